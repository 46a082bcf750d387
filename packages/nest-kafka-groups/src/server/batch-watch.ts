import type { KafkaMessage } from '../client/kafkajs.js';
import { KafkaHandlerTimeoutError } from '../errors/kafka-handler-timeout.error.js';

/** How long a handler has to give up once its signal was aborted before it counts as not giving up. */
export const OVERDUE_GRACE_MS = 1_000;

export interface BatchWatchOptions {
  handlerName: string;
  topic: string;
  partition: number;
  /** The batch's heartbeat (kafkajs sends one at most once per `heartbeatInterval`, whatever the calls). */
  heartbeat: () => Promise<void>;
  heartbeatIntervalMs: number;
  maxProcessingTimeMs: number;
  /**
   * The group's commitIntervalMs: the runner starts the interval's commit from the batch's heartbeat, so a batch that
   * runs long does not hold back what the other batches resolved. 0 (a commit after every batch): no bound here.
   */
  commitIntervalMs: number;
  /** Called once when the message that ran too long still runs `OVERDUE_GRACE_MS` after its signal was aborted. */
  onOverdue?: (timedOut: KafkaHandlerTimeoutError) => void;
}

/**
 * One timer per running batch (none per message): it heartbeats while a handler runs, so a handler slower than
 * the session timeout does not get the member evicted (and the runner commits, on that heartbeat, what the other
 * batches resolved meanwhile), and it aborts the batch's `ctx.signal` when one message
 * has run longer than `maxProcessingTimeMs`. A failed heartbeat (usually: the group is rebalancing) is kept and
 * rethrown by the batch after its current message, which lets kafkajs commit and rejoin. The timer never throws.
 */
export class BatchWatch {
  /** `ctx.signal` of the batch's messages: aborted at shutdown or when a message runs too long. */
  readonly controller = new AbortController();
  /** The message being handled; the batch sets it before each dispatch (one property write per message). */
  current: KafkaMessage | undefined;
  /** The error a heartbeat failed with, for the batch to throw after its current message. */
  heartbeatError: unknown;
  /** Set when the current message ran too long. */
  timedOut: KafkaHandlerTimeoutError | undefined;
  /**
   * The last message the handler succeeded with, not resolved yet: the run of successes is resolved at the batch's
   * end, or by a stop that abandons the batch.
   */
  lastResolved: string | undefined;
  /** Set when the member saw the batch's topic deleted: the batch ends and resolves nothing. */
  topicDeleted = false;
  readonly topic: string;
  readonly partition: number;

  private seen: KafkaMessage | undefined;
  private seenAt = 0;
  private overdueTold = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: BatchWatchOptions) {
    this.topic = options.topic;
    this.partition = options.partition;
    const commitTick = options.commitIntervalMs > 0 ? options.commitIntervalMs / 2 : Infinity;
    const tick = Math.max(
      10,
      Math.min(options.heartbeatIntervalMs / 2, options.maxProcessingTimeMs / 4, commitTick),
    );
    this.timer = setInterval(() => this.tick(), tick);
    // The consumer keeps the process alive while it runs; this timer must not keep it alive after.
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** "Handler.method on topic[partition]@offset" of the message being handled, for log lines. */
  where(): string {
    const { handlerName, topic, partition } = this.options;
    return `${handlerName} on ${topic}[${partition}]@${this.current?.offset ?? '?'}`;
  }

  private tick(): void {
    this.options.heartbeat().catch((error: unknown) => {
      this.heartbeatError ??= error;
    });
    const current = this.current;
    const now = Date.now();
    if (current === undefined || current !== this.seen) {
      this.seen = current;
      this.seenAt = now;
      return;
    }
    if (this.timedOut !== undefined) {
      if (!this.overdueTold && now - this.seenAt >= this.options.maxProcessingTimeMs + OVERDUE_GRACE_MS) {
        this.overdueTold = true;
        this.options.onOverdue?.(this.timedOut);
      }
      return;
    }
    if (now - this.seenAt >= this.options.maxProcessingTimeMs) {
      const { handlerName, topic, partition, maxProcessingTimeMs } = this.options;
      this.timedOut = new KafkaHandlerTimeoutError(
        handlerName,
        topic,
        partition,
        current.offset,
        maxProcessingTimeMs,
      );
      this.controller.abort(this.timedOut);
    }
  }
}
