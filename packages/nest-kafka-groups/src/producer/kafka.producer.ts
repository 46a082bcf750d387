import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
  Optional,
} from '@nestjs/common';
import { clientRetryOf } from '../client/kafka-client.factory.js';
import {
  authenticationFailureOf,
  authorizationFailureOf,
  securityIdentityOf,
} from '../client/security-failures.js';
import {
  compressionType,
  type IHeaders,
  type Kafka,
  Partitioners,
  type Producer,
} from '../client/kafkajs.js';
import { KafkaProducerError } from '../errors/kafka-producer.error.js';
import { KAFKA_CLIENT, KAFKA_MODULE_OPTIONS } from '../kafka.constants.js';
import type { KafkaModuleOptions } from '../kafka.options.js';
import type { KafkaTracingHooks } from '../server/tracing-hooks.js';
import { KafkaShutdown } from '../shutdown/kafka-shutdown.js';
import { ReplaceableProducer } from './replaceable-producer.js';

/** A message for `KafkaProducer.send`. */
export interface KafkaOutgoingMessage {
  /** Partitioning key (murmur2, as Java's default partitioner); null or absent spreads messages. */
  key?: string | Buffer | null;
  /** A Buffer is sent as is, null as a tombstone (no value: deletes the key on a compacted topic), anything else as JSON. */
  value: unknown;
  /** Headers, strings or Buffers. */
  headers?: IHeaders;
  /** An explicit partition, over the key's. */
  partition?: number;
}

/**
 * Injectable producer: idempotent, acknowledged by all in-sync replicas. Connected on module init; disconnected
 * at application shutdown, after the consumers drained, so handlers that produce can finish.
 */
@Injectable()
export class KafkaProducer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(KafkaProducer.name);
  private readonly shutdown: KafkaShutdown;
  private readonly producer: ReplaceableProducer<Producer>;
  private closing = false;
  private readonly compression: number;
  private tracing?: KafkaTracingHooks;

  constructor(
    @Inject(KAFKA_CLIENT) private readonly kafka: Kafka,
    @Inject(KAFKA_MODULE_OPTIONS) private readonly options: KafkaModuleOptions,
    // Optional for a producer built by hand (outside Nest): its shutdown then has a budget of its own.
    @Optional() shutdown?: KafkaShutdown,
  ) {
    this.shutdown = shutdown ?? new KafkaShutdown(options);
    this.producer = new ReplaceableProducer(() => this.createProducer(), this.logger, 'producer');
    this.compression = compressionType(options.compression);
  }

  private createProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: clientRetryOf(this.options),
    });
  }

  /**
   * Starts connecting without blocking the start: a broker that is down at start must not keep the application
   * (and its health endpoint) from coming up. Sends wait for the connection and retry it if it failed.
   */
  onModuleInit(): void {
    this.producer.connect().catch((error: Error) => {
      const message = (authenticationFailureOf(error, securityIdentityOf(this.options)) ?? error).message;
      // A connect that the shutdown cancelled is no failure.
      if (this.closing) this.logger.debug(`Connecting ended by the shutdown (${message})`);
      else this.logger.warn(`Not connected yet (${message}); the next send tries again`);
    });
  }

  /**
   * Bounded by what is left of `shutdownTimeoutMs`. The disconnect ends a connect still retrying (a broker that is
   * down: the carried brokerPool fix), so nothing of the producer outlives the shutdown.
   */
  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    const producer = this.producer.current;
    const connecting = this.producer.connected ? undefined : this.producer.connection?.catch(() => undefined);
    const closing = producer.disconnect().then(async () => {
      // A connect already past its broker connection (fetching the producer id) may open more: closed as it ends.
      if (connecting) await connecting.then(() => producer.disconnect());
    });
    await this.shutdown.within('KafkaProducer: disconnecting', closing);
  }

  /** Set by `nest-kafka-groups/tracing`: sends then run in a PRODUCER span injected into the headers. */
  useTracing(tracing: KafkaTracingHooks): void {
    this.tracing = tracing;
  }

  send(topic: string, message: KafkaOutgoingMessage): Promise<void> {
    return this.sendMany(topic, [message]);
  }

  async sendMany(topic: string, messages: KafkaOutgoingMessage[]): Promise<void> {
    try {
      const records = messages.map(({ key, value, headers, partition }) => ({
        key: key ?? null,
        value: value === null || Buffer.isBuffer(value) ? value : JSON.stringify(value),
        headers,
        partition,
      }));
      await this.producer.send((producer) => {
        const send = async () => {
          await this.producer.connect();
          await producer.send({ topic, acks: -1, compression: this.compression, messages: records });
        };
        return this.tracing ? this.tracing.traceSend(topic, records, send) : send();
      });
    } catch (error) {
      const identity = securityIdentityOf(this.options);
      const security =
        authenticationFailureOf(error, identity) ??
        authorizationFailureOf(error, identity, { operation: 'write', topics: [topic] });
      throw new KafkaProducerError(topic, security ?? error);
    }
  }
}
