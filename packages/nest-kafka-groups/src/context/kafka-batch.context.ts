import { BaseRpcContext } from '@nestjs/microservices';
import type { KafkaMessage } from '../client/kafkajs.js';
import { decodeHeaders, type KafkaGroupContext } from './kafka-group.context.js';

const NO_ARGS: [] = [];

/** One message of a batch call, as `ctx.records[i]` describes the payload element `i`. */
export class KafkaBatchRecord {
  private decodedHeaders?: Record<string, string | string[]>;

  constructor(readonly message: KafkaMessage) {}

  get offset(): string {
    return this.message.offset;
  }

  get key(): string | undefined {
    return this.message.key?.toString();
  }

  get timestamp(): string {
    return this.message.timestamp;
  }

  /** Header values decoded as UTF-8 (a null-prototype object), decoded on first access. */
  get headers(): Record<string, string | string[]> {
    this.decodedHeaders ??= decodeHeaders(this.message.headers);
    return this.decodedHeaders;
  }
}

/**
 * What a batch handler (`@KafkaHandler(topic, { batch: true })`) learns about its call (`@Ctx()`): the partition,
 * and per payload element (same index) its message's offset, key, headers and timestamp in `records`. Narrow like
 * KafkaGroupContext: no raw consumer.
 */
export class KafkaBatchContext extends BaseRpcContext<[]> {
  private builtRecords?: readonly KafkaBatchRecord[];

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** The raw kafkajs messages, in offset order, one per payload element. */
    readonly messages: readonly KafkaMessage[],
    readonly groupId: string,
    /**
     * Deliveries of the call's first message, this one included: 1 on the first call, 2 when the call is retried
     * after it failed (or after a `KafkaBatchFailedError` pointed at that message).
     */
    readonly attempt: number,
    /** Aborted when the application shuts down or the call ran longer than `maxProcessingTimeMs`. */
    readonly signal: AbortSignal,
  ) {
    super(NO_ARGS);
  }

  /** Messages in this call (the payload array's length). */
  get size(): number {
    return this.messages.length;
  }

  get firstOffset(): string {
    return this.messages[0].offset;
  }

  get lastOffset(): string {
    return this.messages[this.messages.length - 1].offset;
  }

  /** Per payload element, its message's offset, key, headers and timestamp; built on first access. */
  get records(): readonly KafkaBatchRecord[] {
    this.builtRecords ??= this.messages.map((message) => new KafkaBatchRecord(message));
    return this.builtRecords;
  }
}

/** What a handler's pipeline is called with: one message's context, or a batch call's. */
export type KafkaHandlerContext = KafkaGroupContext | KafkaBatchContext;
