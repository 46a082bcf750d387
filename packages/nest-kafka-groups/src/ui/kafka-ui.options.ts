import { KafkaConfigurationError } from '../errors/kafka-configuration.error.js';

/** Injection token of the KafkaUiOptions (`KafkaUiModule.forRoot(options)`). */
export const KAFKA_UI_OPTIONS = Symbol('KAFKA_UI_OPTIONS');

/** Options of `KafkaUiModule.forRoot`. */
export interface KafkaUiOptions {
  /** How often each group's offsets and lag are fetched (one admin round trip per group) and pushed. Default 2000. */
  sampleIntervalMs?: number;
  /** How much lag history the page shows per partition. Default 300000 (5 minutes). */
  historyMs?: number;
}

export type ResolvedKafkaUiOptions = Required<KafkaUiOptions>;

/** The page's defaults: a sample every 2 s, 5 min of lag history. */
export const DEFAULT_UI_OPTIONS: ResolvedKafkaUiOptions = { sampleIntervalMs: 2_000, historyMs: 300_000 };

/** Bounds that keep the sampler from hammering the broker and the history from growing without end. */
const MIN_SAMPLE_INTERVAL_MS = 250;
const MAX_HISTORY_MS = 3_600_000;

export function resolveUiOptions(options: KafkaUiOptions = {}): ResolvedKafkaUiOptions {
  const resolved = { ...DEFAULT_UI_OPTIONS, ...options };
  const { sampleIntervalMs, historyMs } = resolved;
  if (!Number.isInteger(sampleIntervalMs) || sampleIntervalMs < MIN_SAMPLE_INTERVAL_MS) {
    throw new KafkaConfigurationError(
      'KafkaUiModule.forRoot.sampleIntervalMs',
      `expected an integer >= ${MIN_SAMPLE_INTERVAL_MS}, got ${String(sampleIntervalMs)}`,
    );
  }
  if (!Number.isInteger(historyMs) || historyMs < sampleIntervalMs || historyMs > MAX_HISTORY_MS) {
    throw new KafkaConfigurationError(
      'KafkaUiModule.forRoot.historyMs',
      `expected an integer from sampleIntervalMs (${sampleIntervalMs}) to ${MAX_HISTORY_MS}, got ${String(historyMs)}`,
    );
  }
  return resolved;
}
