import type { DeadLetterWrite } from '../dead-letter/dead-letter-write.js';
import type { RetryDestination } from '../retry/retry-topic-chain.js';

/** A failing offset of one partition: how often it was tried, and whether only the dead-letter write is left. */
export interface PartitionFailure {
  offset: string;
  attempts: number;
  /** Set once the handler gave up: only the dead-letter write is left to do. */
  exhausted?: Error;
  /** The dead-letter write of this offset, started once; it resumes the partition when the record is in. */
  deadLetter?: DeadLetterWrite;
  /** With retry topics: where the record goes (next retry topic or dead-letter topic), fixed at the failure. */
  next?: RetryDestination;
  /** Epoch ms of the next attempt while the partition waits out its backoff: a rejoin keeps it waiting. */
  retryAt?: number;
  /**
   * Set when the partition was paused for the dead-letter write: resolves the offset outside its batch (in the
   * consumer group kafkajs runs now, which a crash restart replaces), so that a graceful stop or a rejoin that
   * waited for the write commits it. False when no group of the member has joined to resolve it in.
   */
  resolveOffset?: (offset: string) => boolean;
}

/**
 * A batch call that failed for good with an error not pointing at one message: each of its messages, `from` to
 * `through`, goes to the dead-letter topic (one at a time, like single messages) with the call's error.
 */
export interface ExhaustedBatch {
  from: string;
  through: string;
  attempts: number;
  error: Error;
}

/** Orders two Kafka offsets (non-negative decimal strings without leading zeros) without parsing them. */
export function compareOffsets(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** "topic:partition", the key of every per-partition map of a member. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/**
 * What a member remembers per partition across batches, rejoins and consumer restarts:
 * - the failing offset and its attempt count, so a message that keeps failing reaches its last attempt (and the
 *   dead-letter topic) however often the group rebalances; dropped only when the partition is revoked or the
 *   partition moved past that offset;
 * - the last offset resolved in the current generation, so a batch fetched before a later one was processed (a
 *   partition leader moved, a metadata refresh rejoined) is skipped instead of handled again, out of order.
 */
export class PartitionLedger {
  private readonly failures = new Map<string, PartitionFailure>();
  private readonly resolved = new Map<string, string>();
  private readonly exhaustedBatches = new Map<string, ExhaustedBatch>();

  get hasFailures(): boolean {
    return this.failures.size > 0;
  }

  /**
   * The failure recorded for this offset. An entry for an older offset is stale (the message was dead-lettered,
   * or another member processed it) and is deleted; one for a later offset is kept (this older message is a
   * redelivery before it).
   */
  failureAt(key: string, offset: string): PartitionFailure | undefined {
    const failure = this.failures.get(key);
    if (!failure || failure.offset === offset) return failure;
    if (compareOffsets(failure.offset, offset) < 0) this.drop(key, failure);
    return undefined;
  }

  /** Records one more failed attempt of this offset; returns the entry. */
  failed(key: string, offset: string, attempt: number): PartitionFailure {
    let failure = this.failures.get(key);
    if (!failure || failure.offset !== offset) {
      if (failure) this.drop(key, failure);
      failure = { offset, attempts: 0 };
      this.failures.set(key, failure);
    }
    failure.attempts = attempt;
    return failure;
  }

  /** The failing offset of this partition, if any (for the retry delay). */
  failure(key: string): PartitionFailure | undefined {
    return this.failures.get(key);
  }

  /** The offset is done (handled or dead-lettered): forget its failure. */
  settled(key: string): void {
    this.failures.delete(key);
  }

  /** The batch call of this partition whose messages are being dead-lettered, if any. */
  exhaustedBatch(key: string): ExhaustedBatch | undefined {
    return this.exhaustedBatches.get(key);
  }

  setExhaustedBatch(key: string, batch: ExhaustedBatch | undefined): void {
    if (batch) this.exhaustedBatches.set(key, batch);
    else this.exhaustedBatches.delete(key);
  }

  /** The last offset resolved in this generation, below which a batch is stale. */
  lastResolved(key: string): string | undefined {
    return this.resolved.get(key);
  }

  setLastResolved(key: string, offset: string): void {
    this.resolved.set(key, offset);
  }

  /**
   * A new generation: fetch positions restart from the committed offsets, so the stale-batch floor starts afresh.
   * Failures are kept for the partitions this member still owns (`assigned` keys) and dropped for the others
   * (their dead-letter writes cancelled: the partition's new owner decides).
   */
  joined(assigned: ReadonlySet<string>): void {
    this.resolved.clear();
    for (const [key, failure] of this.failures) if (!assigned.has(key)) this.drop(key, failure);
    for (const key of this.exhaustedBatches.keys()) if (!assigned.has(key)) this.exhaustedBatches.delete(key);
  }

  /** The partitions ("topic:partition" keys) still waiting out a retry backoff at `now`, with the time left. */
  waitingRetries(now: number): { key: string; delayMs: number }[] {
    const waiting: { key: string; delayMs: number }[] = [];
    for (const [key, failure] of this.failures) {
      if (failure.exhausted || failure.retryAt === undefined || failure.retryAt <= now) continue;
      waiting.push({ key, delayMs: failure.retryAt - now });
    }
    return waiting;
  }

  /** The failures whose dead-letter write was started (written or not): what a stop or a rejoin settles first. */
  deadLetterFailures(): { key: string; failure: PartitionFailure }[] {
    const started: { key: string; failure: PartitionFailure }[] = [];
    for (const [key, failure] of this.failures) if (failure.deadLetter) started.push({ key, failure });
    return started;
  }

  /** Shutdown: no dead-letter write is tried again (a send already out may finish); returns `deadLetterFailures()`. */
  cancelDeadLetters(): { key: string; failure: PartitionFailure }[] {
    const started = this.deadLetterFailures();
    for (const { failure } of started) failure.deadLetter!.cancel();
    return started;
  }

  private drop(key: string, failure: PartitionFailure): void {
    failure.deadLetter?.cancel();
    this.failures.delete(key);
  }

  /** The partition's fetch position was moved back (an out-of-range reset): nothing fetched from there is stale. */
  positionReset(key: string): void {
    this.resolved.delete(key);
  }

  /**
   * The partition's topic was deleted: a topic created again under its name has other records at the same offsets,
   * so neither the stale floor nor a failure (its dead-letter write cancelled) applies to them.
   */
  topicDeleted(key: string): void {
    this.resolved.delete(key);
    const failure = this.failures.get(key);
    if (failure) this.drop(key, failure);
    this.exhaustedBatches.delete(key);
  }

  /** The consumer crashed or was replaced: positions are unknown until the next join; attempts stay. */
  lostPositions(): void {
    this.resolved.clear();
  }
}
