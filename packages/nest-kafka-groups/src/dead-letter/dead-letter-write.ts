import { Logger } from '@nestjs/common';
import type { Message } from '../client/kafkajs.js';
import { KafkaAuthorizationError } from '../errors/kafka-authorization.error.js';
import { KafkaDeadLetterError } from '../errors/kafka-dead-letter.error.js';
import { KafkaRetryTopicError } from '../errors/kafka-retry-topic.error.js';
import { buildDeadLetterHeaders, buildStubHeaders, type DeadLetterSource } from './dead-letter-headers.js';

/** Sends one record and resolves once the broker acknowledged it. */
export type RecordSender = (topic: string, record: Message, timeoutMs: number) => Promise<void>;

export interface DeadLetterWriteSettings {
  /** After this long without an answer the write is reported slow; it is never sent again before it settles. */
  timeoutMs: number;
  /** Delay before a failed write is tried again; failures that need someone to act back off from it. */
  retryDelayMs: number;
}

/**
 * - `pending`: being sent, or waiting to be sent again after a failure that may pass (broker unavailable).
 * - `stopped`: failed in a way that needs someone to act (topic missing, not authorized, too large even as a
 *   stub); still tried again, with a growing delay, so creating the topic or granting the ACL lets it go on.
 * - `written`: in the dead-letter topic; the original offset may be committed.
 */
export type DeadLetterWriteState = 'pending' | 'stopped' | 'written';

/** Broker errors after which writing the same record again cannot succeed by itself. */
export const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);
const NEEDS_ACTION: ReadonlyMap<string, string> = new Map([
  ['UNKNOWN_TOPIC_OR_PARTITION', 'the dead-letter topic does not exist'],
  ['INVALID_TOPIC_EXCEPTION', 'the dead-letter topic name is invalid'],
  ['TOPIC_AUTHORIZATION_FAILED', 'not authorized to write to the dead-letter topic'],
  ['CLUSTER_AUTHORIZATION_FAILED', 'not authorized to use an idempotent producer (IdempotentWrite)'],
  ['INVALID_RECORD', 'the dead-letter topic refuses the record (a compacted topic needs a key)'],
]);

/** Upper bound of the delay between tries of a stopped write. */
export const MAX_STOPPED_RETRY_DELAY_MS = 60_000;

/** Protocol error types in an error and the errors it wraps (kafkajs nests them in retry errors). */
export function errorTypes(error: unknown): Set<string> {
  const types = new Set<string>();
  const pending: unknown[] = [error];
  for (let seen = 0; pending.length > 0 && seen < 20; seen++) {
    const current = pending.pop() as Record<string, unknown> | null | undefined;
    if (!current || typeof current !== 'object') continue;
    if (typeof current.type === 'string') types.add(current.type);
    pending.push(current.cause, current.originalError);
    if (Array.isArray(current.errors)) pending.push(...(current.errors as unknown[]));
  }
  return types;
}

/**
 * One dead letter, written at most once per (topic, partition, offset): never sent again while a send is still
 * out, even one past its deadline (the old deadline race gave up on a send that later succeeded, and the retry
 * wrote a second copy). Runs beside the fetch loop, so a dead-letter outage pauses only its own partition.
 * A record the topic refuses as too large is replaced by a stub naming the original.
 */
export class DeadLetterWrite {
  state: DeadLetterWriteState = 'pending';
  /** Why the last try failed (names the source and dead-letter topics); undefined once written. */
  reason?: string;
  /** True once the original was refused as too large: the stub is written instead. */
  stub = false;
  /** Records handed to the producer so far. */
  sends = 0;
  private failures = 0;
  private timer?: NodeJS.Timeout;
  private firstTried!: () => void;
  private readonly firstTry = new Promise<void>((resolve) => (this.firstTried = resolve));
  private isCancelled = false;
  /** Settles once the send out now was answered and its outcome applied; undefined while none is out. */
  private sendOut?: Promise<void>;
  private readonly logger = new Logger(DeadLetterWrite.name);
  private readonly where: string;

  constructor(
    private readonly send: RecordSender,
    readonly deadLetterTopic: string,
    private readonly source: DeadLetterSource,
    private readonly settings: DeadLetterWriteSettings,
    private readonly onChange: (write: DeadLetterWrite) => void,
  ) {
    this.where = `${source.topic}[${source.partition}]@${source.message.offset}`;
    void this.attempt(this.record());
  }

  /** Resolves once the first try settled (written or failed), or after `ms`, whichever comes first. */
  async settledWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.firstTry, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  get cancelled(): boolean {
    return this.isCancelled;
  }

  /** Whether a send of this write is out now. */
  get sending(): boolean {
    return this.sendOut !== undefined;
  }

  /**
   * Resolves once no send of this write is out any more (at once when none is): for a graceful stop, which lets a
   * send in flight finish so that a written record's offset is committed rather than written again by the next owner.
   */
  async sendsSettled(): Promise<void> {
    while (this.sendOut) await this.sendOut;
  }

  /** Stops trying (the partition was revoked or the application is shutting down); a send in flight may finish. */
  cancel(): void {
    this.isCancelled = true;
    clearTimeout(this.timer);
  }

  private record(): Message {
    const { message, partition } = this.source;
    // The source partition number, used where the destination has it (SourcePartitionPartitioner).
    if (!this.stub) {
      return {
        key: message.key,
        value: message.value,
        headers: buildDeadLetterHeaders(this.source),
        partition,
      };
    }
    return {
      key: message.key,
      value: null,
      headers: buildStubHeaders(this.source, this.stubReason()),
      partition,
    };
  }

  private stubReason(): string {
    const { message } = this.source;
    return (
      `MESSAGE_TOO_LARGE: ${this.where} (value ${message.value?.length ?? 0} bytes) is larger than dead-letter ` +
      `topic "${this.deadLetterTopic}" accepts (max.message.bytes); the original stays in ${this.where} while ` +
      'the retention keeps it'
    );
  }

  private attempt(record: Message): Promise<void> {
    const out = this.trySend(record).finally(() => {
      if (this.sendOut === out) this.sendOut = undefined;
    });
    this.sendOut = out;
    return out;
  }

  private async trySend(record: Message): Promise<void> {
    this.sends++;
    const { timeoutMs } = this.settings;
    const slow = setTimeout(() => {
      this.logger.warn(
        `No answer within ${timeoutMs} ms writing ${this.where} to "${this.deadLetterTopic}"; waiting for it ` +
          'before writing again (a second send could write it twice)',
      );
    }, timeoutMs);
    slow.unref();
    let failure: unknown;
    try {
      await this.send(this.deadLetterTopic, record, timeoutMs);
    } catch (error) {
      failure = error ?? new Error('send failed');
    } finally {
      clearTimeout(slow);
    }
    if (failure === undefined) return this.written();
    if (this.isCancelled) return;
    const types = errorTypes(failure);
    // A stub has no value to handle again: only the dead-letter topic gets one, never a retry topic.
    if (!this.stub && !this.source.toRetryTopic && [...types].some((t) => TOO_LARGE.has(t))) {
      this.stub = true;
      this.logger.warn(`${this.stubReason()}; writing a stub record that names it instead`);
      return this.attempt(this.record());
    }
    this.failed(failure, types);
  }

  private written(): void {
    if (this.failures > 0) {
      this.logger.log(`Wrote ${this.where} to "${this.deadLetterTopic}" after ${this.failures} failed tries`);
    }
    this.state = 'written';
    this.reason = undefined;
    this.onChange(this);
    this.firstTried();
  }

  private failed(failure: unknown, types: Set<string>): void {
    this.failures++;
    const type = [...types].find((t) => TOO_LARGE.has(t) || NEEDS_ACTION.has(t));
    const { toRetryTopic } = this.source;
    const tooLarge = toRetryTopic
      ? `the retry topic refuses a record this large (value ${this.source.message.value?.length ?? 0} bytes; raise its max.message.bytes)`
      : 'even the stub record is too large';
    let needsAction = type && (TOO_LARGE.has(type) ? tooLarge : NEEDS_ACTION.get(type));
    // The same causes, for the retry topic a record moves to.
    if (needsAction && toRetryTopic) needsAction = needsAction.replace('dead-letter topic', 'retry topic');
    // A denial already named (operation, topic, user) says more than the generic text.
    const named = failure instanceof KafkaAuthorizationError ? failure.message : needsAction;
    const cause = needsAction ? new Error(`${type}: ${named}`, { cause: failure }) : failure;
    const { topic, partition, message } = this.source;
    this.reason = new (toRetryTopic ? KafkaRetryTopicError : KafkaDeadLetterError)(
      this.deadLetterTopic,
      topic,
      partition,
      message.offset,
      cause,
    ).message;
    const { retryDelayMs } = this.settings;
    let delay = retryDelayMs;
    if (needsAction) {
      delay = Math.min(Math.max(retryDelayMs, 1) * 2 ** (this.failures - 1), MAX_STOPPED_RETRY_DELAY_MS);
      if (this.state !== 'stopped') {
        this.logger.error(
          `${this.reason}; partition stopped until it can be written (tried again in ${delay} ms)`,
        );
      } else {
        this.logger.warn(`${this.reason}; trying again in ${delay} ms`);
      }
      this.state = 'stopped';
    } else {
      this.logger.warn(`${this.reason}; the partition waits and tries again in ${delay} ms`);
    }
    this.onChange(this);
    this.firstTried();
    this.timer = setTimeout(() => {
      if (!this.isCancelled) void this.attempt(this.record());
    }, delay);
    this.timer.unref();
  }
}
