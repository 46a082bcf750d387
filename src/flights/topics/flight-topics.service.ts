import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Environment } from '../../config/environment.js';
import {
  authenticationFailureOf,
  authorizationFailureOf,
  KAFKA_CLIENT,
  KAFKA_MODULE_OPTIONS,
  type KafkaModuleOptions,
  securityIdentityOf,
} from 'nest-kafka-groups';
import type { Kafka } from 'kafkajs';

/** Bounded retries per attempt, so a broker that stays away is reported and retried later. */
const ADMIN_RETRY = { retries: 5, initialRetryTime: 300, maxRetryTime: 5_000 };
const RETRY_EVERY_MS = 5_000;
/** How long the start waits for the topics before letting the service come up without them. */
const START_WAIT_MS = 10_000;

/**
 * Creates the flight topics and their dead-letter topics (`<topic>-dlt`) when they are missing, with
 * KAFKA_TOPIC_PARTITIONS partitions. Runs in `onModuleInit`, that is inside `app.init()`, before
 * `app.startAllMicroservices()` lets any consumer join: consumers never create topics (auto-creation is off for
 * them), and a topic created by a broker's auto-creation would get the broker's default partition count.
 * Existing topics are left as they are, whatever their partition count (a warning says so).
 */
@Injectable()
export class FlightTopicsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(FlightTopicsService.name);
  private ensured?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    @Inject(KAFKA_CLIENT) private readonly kafka: Kafka,
    @Inject(KAFKA_MODULE_OPTIONS) private readonly kafkaOptions: KafkaModuleOptions,
    private readonly config: ConfigService<Environment, true>,
  ) {}

  /** The topics the flight feed writes and the flight modules read. */
  get sourceTopics(): string[] {
    return [
      this.config.get('AIRNAV_TOPIC', { infer: true }),
      this.config.get('FLIGHT24_TOPIC', { infer: true }),
    ];
  }

  /**
   * Tries once before the consumers start. If the broker is away, the service still comes up (health says the
   * broker is down) and the topics are created in the background as soon as it answers; consumers of a missing
   * topic retry meanwhile.
   */
  async onModuleInit(): Promise<void> {
    this.ensured ??= this.ensureTopics();
    const outcome = this.ensured.then(
      () => 'ready' as const,
      (error: Error) => {
        // A wrong password is reported once by the library's KafkaSecurity logger; this is its consequence.
        const level = authenticationFailureOf(error, securityIdentityOf(this.kafkaOptions))
          ? 'warn'
          : 'error';
        this.logger[level](`${error.message}; retrying every ${RETRY_EVERY_MS / 1000} s`);
        this.retryInBackground();
        return 'failed' as const;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waiting'>(
      (resolve) => (timer = setTimeout(() => resolve('waiting'), START_WAIT_MS)),
    );
    if ((await Promise.race([outcome, waited])) === 'waiting') {
      this.logger.warn(
        `The broker has not answered in ${START_WAIT_MS / 1000} s; starting anyway, topics follow`,
      );
    }
    clearTimeout(timer);
  }

  onModuleDestroy(): void {
    clearTimeout(this.retryTimer);
  }

  private retryInBackground(): void {
    this.retryTimer = setTimeout(() => {
      this.ensureTopics().then(
        () => this.logger.log('Flight topics ready'),
        () => this.retryInBackground(),
      );
    }, RETRY_EVERY_MS);
  }

  private async ensureTopics(): Promise<void> {
    const numPartitions = this.config.get('KAFKA_TOPIC_PARTITIONS', { infer: true });
    const replicationFactor = this.config.get('KAFKA_TOPIC_REPLICATION_FACTOR', { infer: true });
    const wanted = this.sourceTopics.flatMap((topic) => [topic, `${topic}-dlt`]);
    const admin = this.kafka.admin({ retry: ADMIN_RETRY });
    let missing: string[] = wanted;
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      missing = wanted.filter((topic) => !existing.has(topic));
      if (missing.length > 0) {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({ topic, numPartitions, replicationFactor })),
        });
        this.logger.log(`Created ${missing.join(', ')} with ${numPartitions} partition(s)`);
      }
      const present = wanted.filter((topic) => existing.has(topic));
      if (present.length > 0) {
        const { topics } = await admin.fetchTopicMetadata({ topics: present });
        for (const { name, partitions } of topics) {
          if (partitions.length !== numPartitions) {
            this.logger.warn(
              `Topic ${name} exists with ${partitions.length} partition(s), not KAFKA_TOPIC_PARTITIONS=${numPartitions}: left as it is`,
            );
          }
        }
      }
    } catch (error) {
      const identity = securityIdentityOf(this.kafkaOptions);
      const named =
        authenticationFailureOf(error, identity) ??
        authorizationFailureOf(error, identity, { operation: 'create', topics: missing }) ??
        (error as Error);
      throw new Error(`Could not create the flight topics (${wanted.join(', ')}): ${named.message}`, {
        cause: error,
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
