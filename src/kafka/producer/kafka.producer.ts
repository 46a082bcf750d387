import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { clientRetryOf } from '../client/kafka-client.factory.js';
import { type IHeaders, type Kafka, Partitioners, type Producer } from '../client/kafkajs.js';
import { KafkaProducerError } from '../errors/kafka-producer.error.js';
import { KAFKA_CLIENT, KAFKA_MODULE_OPTIONS } from '../kafka.constants.js';
import type { KafkaModuleOptions } from '../kafka.options.js';

export interface KafkaOutgoingMessage {
  key?: string | Buffer | null;
  /** A Buffer is sent as is; anything else as JSON. */
  value: unknown;
  headers?: IHeaders;
  partition?: number;
}

/**
 * Injectable producer: idempotent, acknowledged by all in-sync replicas. Connected on module init; disconnected
 * at application shutdown, after the consumers drained, so handlers that produce can finish.
 */
@Injectable()
export class KafkaProducer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(KafkaProducer.name);
  private readonly producer: Producer;
  private connection?: Promise<void>;

  constructor(@Inject(KAFKA_CLIENT) kafka: Kafka, @Inject(KAFKA_MODULE_OPTIONS) options: KafkaModuleOptions) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: clientRetryOf(options),
    });
  }

  /**
   * Starts connecting without blocking the start: a broker that is down at start must not keep the application
   * (and its health endpoint) from coming up. Sends wait for the connection and retry it if it failed.
   */
  onModuleInit(): void {
    this.connect().catch((error: Error) =>
      this.logger.warn(`Not connected yet (${error.message}); the next send tries again`),
    );
  }

  private connect(): Promise<void> {
    this.connection ??= this.producer.connect().catch((error: unknown) => {
      this.connection = undefined;
      throw error;
    });
    return this.connection;
  }

  async onApplicationShutdown(): Promise<void> {
    // A connection still being made would outlive the disconnect: let it settle first.
    await this.connection?.catch(() => undefined);
    await this.producer
      .disconnect()
      .catch((error: Error) => this.logger.warn(`Disconnect failed: ${error.message}`));
  }

  send(topic: string, message: KafkaOutgoingMessage): Promise<void> {
    return this.sendMany(topic, [message]);
  }

  async sendMany(topic: string, messages: KafkaOutgoingMessage[]): Promise<void> {
    try {
      await this.connect();
      await this.producer.send({
        topic,
        acks: -1,
        messages: messages.map(({ key, value, headers, partition }) => ({
          key: key ?? null,
          value: Buffer.isBuffer(value) ? value : JSON.stringify(value),
          headers,
          partition,
        })),
      });
    } catch (error) {
      throw new KafkaProducerError(topic, error);
    }
  }
}
