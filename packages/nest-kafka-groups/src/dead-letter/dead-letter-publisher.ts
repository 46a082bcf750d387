import { Logger } from '@nestjs/common';
import { type Kafka, Partitioners, type Producer, type RetryOptions } from '../client/kafkajs.js';
import { KafkaDeadLetterError } from '../errors/kafka-dead-letter.error.js';
import { buildDeadLetterHeaders, type DeadLetterSource } from './dead-letter-headers.js';

/**
 * Writes failed messages to their dead-letter topic with the original key, value bytes and headers. Its own
 * producer, not idempotent: kafkajs's idempotent producer retries forever, and a write that never ends would hold
 * the partition forever. Retries are bounded and every write has a deadline; a failed write is reported to the
 * caller, which then leaves the offset uncommitted.
 */
export class DeadLetterPublisher {
  private readonly logger = new Logger(DeadLetterPublisher.name);
  private readonly producer: Producer;
  private connecting?: Promise<void>;

  constructor(kafka: Kafka, retry: RetryOptions) {
    this.producer = kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { ...retry, retries: Math.min(retry.retries ?? 3, 3) },
    });
  }

  async publish(deadLetterTopic: string, source: DeadLetterSource, timeoutMs: number): Promise<void> {
    const { topic, partition, message } = source;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.write(deadLetterTopic, source),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      throw new KafkaDeadLetterError(deadLetterTopic, topic, partition, message.offset, error);
    } finally {
      clearTimeout(timer);
    }
  }

  async disconnect(): Promise<void> {
    if (!this.connecting) return;
    this.connecting = undefined;
    await this.producer
      .disconnect()
      .catch((error: Error) => this.logger.warn(`Disconnect failed: ${error.message}`));
  }

  private async write(deadLetterTopic: string, source: DeadLetterSource): Promise<void> {
    this.connecting ??= this.producer.connect().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    await this.connecting;
    await this.producer.send({
      topic: deadLetterTopic,
      acks: -1,
      messages: [
        { key: source.message.key, value: source.message.value, headers: buildDeadLetterHeaders(source) },
      ],
    });
  }
}
