import { Logger } from '@nestjs/common';
import {
  compressionType,
  type Kafka,
  type Message,
  type Producer,
  type RetryOptions,
} from '../client/kafkajs.js';
import type { KafkaCompression } from '../client/codecs.js';
import { authorizationFailureOf, type SecurityIdentity } from '../client/security-failures.js';
import { ReplaceableProducer } from '../producer/replaceable-producer.js';
import type { KafkaTracingHooks } from '../server/tracing-hooks.js';
import {
  DeadLetterWrite,
  type DeadLetterWriteSettings,
  errorTypes,
  type RecordSender,
  TOO_LARGE,
} from './dead-letter-write.js';
import { SourcePartitionPartitioner } from './source-partition.js';
import type { DeadLetterSource } from './dead-letter-headers.js';

const GZIP = compressionType('gzip');
/**
 * Codecs that shrink text-like values far less than gzip (lz4 and snappy have no entropy coding: random letters
 * hardly shrink), so a record refused in them is sent again in gzip. zstd has entropy coding as gzip has. By their
 * names, for the line that says so.
 */
const WEAKER_THAN_GZIP = new Map(
  (['none', 'snappy', 'lz4'] satisfies KafkaCompression[]).map((name) => [compressionType(name), name]),
);

/**
 * Writes failed messages to their dead-letter topic with the original key, value bytes and headers, to the original
 * partition number where the topic has it (SourcePartitionPartitioner), through its own idempotent producer (a
 * retry inside one send is not written twice). Retries are bounded: kafkajs's idempotent producer would otherwise
 * retry a missing topic forever. Each message is one `DeadLetterWrite`, which runs beside the fetch loop and tells
 * its member when the record is in (or cannot be written).
 */
export class DeadLetterPublisher {
  private readonly logger = new Logger(DeadLetterPublisher.name);
  private readonly producer: ReplaceableProducer<Producer>;
  private readonly writes = new Set<DeadLetterWrite>();
  /** Destination topics already told of that took a record only compressed. */
  private readonly compressedFor = new Set<string>();
  private readonly send: RecordSender = (topic, record, timeoutMs) =>
    this.sendRecord(topic, record, timeoutMs);

  constructor(
    private readonly kafka: Kafka,
    private readonly retry: RetryOptions,
    private readonly compression: number,
    private readonly identity: SecurityIdentity,
    private readonly tracing?: KafkaTracingHooks,
  ) {
    this.producer = new ReplaceableProducer(() => this.createProducer(), this.logger, 'dead-letter producer');
  }

  /**
   * Starts writing `source` to `deadLetterTopic`; `onChange` is called when the write succeeded and whenever it
   * failed (the write then tries again by itself until it succeeds or is cancelled).
   */
  start(
    deadLetterTopic: string,
    source: DeadLetterSource,
    settings: DeadLetterWriteSettings,
    onChange: (write: DeadLetterWrite) => void,
  ): DeadLetterWrite {
    const tracing = this.tracing;
    const send: RecordSender = tracing
      ? (topic, record, timeoutMs) =>
          tracing.traceRepublish(source.toRetryTopic ? 'retry' : 'dead-letter', source, topic, record, () =>
            this.sendRecord(topic, record, timeoutMs),
          )
      : this.send;
    const write = new DeadLetterWrite(send, deadLetterTopic, source, settings, (w) => {
      if (w.state === 'written') this.writes.delete(w);
      onChange(w);
    });
    // Writes whose partition was revoked are only kept for a shutdown's cancel: drop them here.
    for (const old of this.writes) if (old.cancelled) this.writes.delete(old);
    this.writes.add(write);
    return write;
  }

  async disconnect(): Promise<void> {
    for (const write of this.writes) write.cancel();
    this.writes.clear();
    if (!this.producer.connection) return;
    this.producer.forgetConnection();
    await this.producer.current
      .disconnect()
      .catch((error: Error) => this.logger.warn(`Disconnect failed: ${error.message}`));
  }

  private createProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      allowAutoTopicCreation: false,
      createPartitioner: SourcePartitionPartitioner,
      retry: { ...this.retry, retries: Math.min(this.retry.retries ?? 3, 3) },
    });
  }

  private async sendRecord(topic: string, record: Message, timeoutMs: number): Promise<void> {
    try {
      try {
        await this.sendWith(this.compression, topic, record, timeoutMs);
      } catch (error) {
        // A record its source topic took in a gzip (or zstd) batch may be larger than a topic of the same size takes
        // uncompressed or in a weaker codec: refused as such, it is sent again in gzip (the refused send appended
        // nothing).
        if (!WEAKER_THAN_GZIP.has(this.compression) || ![...errorTypes(error)].some((t) => TOO_LARGE.has(t)))
          throw error;
        await this.sendWith(GZIP, topic, record, timeoutMs);
        if (!this.compressedFor.has(topic)) {
          this.compressedFor.add(topic);
          const codec = WEAKER_THAN_GZIP.get(this.compression);
          this.logger.log(
            `A record of ${record.value?.length ?? 0} bytes was larger than "${topic}" takes ` +
              `${codec === 'none' ? 'uncompressed' : `in forRoot compression '${codec}'`} ` +
              "(max.message.bytes): written gzip-compressed (forRoot compression 'gzip' writes every record so)",
          );
        }
      }
    } catch (error) {
      // An ACL denial named with the user and the topic; its protocol error type stays in the cause chain.
      throw authorizationFailureOf(error, this.identity, { operation: 'write', topics: [topic] }) ?? error;
    }
  }

  private async sendWith(
    compression: number,
    topic: string,
    record: Message,
    timeoutMs: number,
  ): Promise<void> {
    await this.producer.send(async (producer) => {
      await this.producer.connect();
      await producer.send({ topic, acks: -1, timeout: timeoutMs, compression, messages: [record] });
    });
  }
}
