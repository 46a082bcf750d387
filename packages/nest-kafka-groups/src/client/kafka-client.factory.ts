import { Logger } from '@nestjs/common';
import type { KafkaModuleOptions } from '../kafka.options.js';
import { printable, safeJson } from '../logging/printable.js';
import { brokerConnectivity } from './broker-connectivity.js';
import { nestLevelOf } from './kafkajs-log-level.js';
import { DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES } from './codecs.js';
import {
  Kafka,
  KafkaLogLevel,
  type LogEntry,
  type RetryOptions,
  setMaxDecompressedBatchBytes,
} from './kafkajs.js';
import { isSecurityLogLine, type SecurityIdentity, securityIdentityOf } from './security-failures.js';

/** Explicit client retry: under jest (NODE_ENV=test) kafkajs would otherwise switch to other defaults. */
export const DEFAULT_CLIENT_RETRY: RetryOptions = {
  initialRetryTime: 300,
  maxRetryTime: 30_000,
  retries: 8,
  factor: 0.2,
  multiplier: 2,
};

/** A kafkajs WARN line that repeats within this window is printed at debug: one line per problem, not per retry. */
const REPEAT_WINDOW_MS = 5 * 60_000;
/** Distinct warning texts remembered at most (kafkajs's texts name brokers, topics, members: they vary). */
const REPEAT_TEXTS = 1_000;

/**
 * When each warning text was last printed, oldest first: a text is printed again once the window has passed since.
 * Texts whose window has passed are dropped as new ones come; beyond `limit` texts the oldest goes first (it may
 * then be printed again within its window).
 */
export class RepeatedWarnings {
  private readonly printedAt = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly limit: number,
  ) {}

  get size(): number {
    return this.printedAt.size;
  }

  /** Whether `text` is to be printed at `now` (not printed within the window); if so, remembers it. */
  print(text: string, now: number): boolean {
    const at = this.printedAt.get(text);
    if (at !== undefined && now - at < this.windowMs) return false;
    this.printedAt.delete(text);
    for (const [oldest, printed] of this.printedAt) {
      if (now - printed < this.windowMs && this.printedAt.size < this.limit) break;
      this.printedAt.delete(oldest);
    }
    this.printedAt.set(text, now);
    return true;
  }
}

/** kafkajs log entries go through Nest's Logger under the kafkajs namespace, at the level `nestLevelOf` picks. */
function nestLogCreator(identity: SecurityIdentity) {
  const loggers = new Map<string, Logger>();
  const warned = new RepeatedWarnings(REPEAT_WINDOW_MS, REPEAT_TEXTS);
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const context = `kafkajs${namespace ? `:${namespace}` : ''}`;
      let logger = loggers.get(context);
      if (!logger) loggers.set(context, (logger = new Logger(context)));
      // kafkajs adds a timestamp and its own name to every entry; Nest's logger prints its own.
      const { message, timestamp, logger: name, ...extra } = log;
      void timestamp;
      void name;
      const text = printable(String(message));
      const line = Object.keys(extra).length > 0 ? `${text} ${safeJson(extra)}` : text;
      // A wrong password or untrusted certificate is reported once by the library (KafkaSecurity), not per retry.
      let nestLevel = isSecurityLogLine(String(message), extra, identity)
        ? 'debug'
        : nestLevelOf(level, String(message), extra);
      if (nestLevel === 'warn' && !warned.print(`${context} ${String(message)}`, Date.now()))
        nestLevel = 'debug';
      logger[nestLevel](line);
    };
}

/**
 * Consumers get a shorter budget by default: kafkajs retries a dead group coordinator's address until the budget
 * is spent, and only the consumer's restart looks the coordinator up again (with the client default, a member
 * stalled about 75 s after its coordinator broker died; the fault suite measures it). Producers keep the longer
 * one, so that a send is not abandoned in the middle of a leader election.
 */
export const DEFAULT_CONSUMER_RETRY: RetryOptions = {
  ...DEFAULT_CLIENT_RETRY,
  maxRetryTime: 3_000,
  retries: 5,
};

export function clientRetryOf(options: KafkaModuleOptions): RetryOptions {
  return { ...DEFAULT_CLIENT_RETRY, ...options.clientRetry };
}

export function consumerRetryOf(options: KafkaModuleOptions): RetryOptions {
  return { ...DEFAULT_CONSUMER_RETRY, ...options.clientRetry };
}

/** A kafkajs client of the library's own instance (carried fixes, codecs), logging through Nest, configured from forRoot-style options. */
export function createKafkaClient(options: KafkaModuleOptions): Kafka {
  setMaxDecompressedBatchBytes(options.maxDecompressedBatchBytes ?? DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES);
  return new Kafka({
    brokers: options.brokers,
    clientId: options.clientId ?? 'nest-kafka-groups',
    ssl: options.ssl,
    sasl: options.sasl,
    connectionTimeout: options.connectionTimeout,
    requestTimeout: options.requestTimeout,
    retry: clientRetryOf(options),
    logLevel: KafkaLogLevel.INFO,
    logCreator: nestLogCreator(securityIdentityOf(options)),
    socketFactory: brokerConnectivity.socketFactory(),
  });
}
