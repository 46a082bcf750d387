import type { Logger } from '@nestjs/common';

/** What a replaceable producer needs of a kafkajs producer. */
export interface ReplaceableClient {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * An idempotent producer that is replaced when the broker no longer follows its sequence numbers: after such a
 * refusal kafkajs's idempotent producer fails every later send to that partition (kafkajs#598), so the next send
 * goes through a new producer (a new producer id, fresh sequences). Concurrent failures of one producer replace it
 * once. The replaced producer is disconnected at once, and again as each of its sends still under way settles: a
 * send retrying at the replacement connects it again on its next try (kafkajs connects a disconnected cluster), and
 * those sockets would outlive the application. Used by KafkaProducer and the dead-letter publisher.
 */
export class ReplaceableProducer<P extends ReplaceableClient> {
  private producer: P;
  private pending?: Promise<void>;
  private ready = false;

  constructor(
    private readonly create: () => P,
    private readonly logger: Logger,
    /** How the log names it ("producer", "dead-letter producer"). */
    private readonly name: string,
  ) {
    this.producer = create();
  }

  get current(): P {
    return this.producer;
  }

  /** The current producer's connect, under way or done; undefined before the first or after a failed one. */
  get connection(): Promise<void> | undefined {
    return this.pending;
  }

  /** Whether the current producer's connect succeeded. */
  get connected(): boolean {
    return this.ready;
  }

  /** Connects the current producer once; a failed connect is started again by the next call. */
  connect(): Promise<void> {
    const producer = this.producer;
    this.pending ??= producer.connect().then(
      () => {
        if (producer === this.producer) this.ready = true;
      },
      (error: unknown) => {
        if (producer === this.producer) this.pending = undefined;
        throw error;
      },
    );
    return this.pending;
  }

  /** Forgets the connect (the caller disconnected the producer): the next `connect()` starts one again. */
  forgetConnection(): void {
    this.pending = undefined;
    this.ready = false;
  }

  /** Runs a send on the current producer; replaces that producer when the send failed with a lost sequence. */
  async send<T>(send: (producer: P) => Promise<T>): Promise<T> {
    const producer = this.producer;
    try {
      return await send(producer);
    } catch (error) {
      if (hasLostSequence(error)) this.replace(producer, error);
      throw error;
    } finally {
      if (producer !== this.producer) producer.disconnect().catch(() => undefined);
    }
  }

  private replace(failed: P, error: unknown): void {
    if (failed !== this.producer) return;
    this.logger.warn(`Replacing the ${this.name} after ${(error as Error).message}`);
    this.producer = this.create();
    this.pending = undefined;
    this.ready = false;
    failed.disconnect().catch(() => undefined);
  }
}

/** Errors after which an idempotent producer's sequence numbers no longer match the broker's. */
const LOST_SEQUENCE_ERRORS = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
]);

/** Whether the error, or one it wraps (kafkajs nests them in retry errors), is a lost-sequence error. */
export function hasLostSequence(error: unknown): boolean {
  for (let current = error as Record<string, unknown> | undefined, depth = 0; current && depth < 5; depth++) {
    if (LOST_SEQUENCE_ERRORS.has(String(current.type))) return true;
    current = (current.originalError ?? current.cause) as Record<string, unknown> | undefined;
  }
  return false;
}
