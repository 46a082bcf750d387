import { Inject, Injectable, Logger, type OnModuleInit, Optional } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MemberState } from '../server/consumer-member.js';
import type { MemberObserver } from '../server/member-observer.js';
import { KafkaGroupsServer } from '../server/kafka-groups.server.js';
import { KafkaStatusService } from '../status/kafka-status.service.js';
import type { KafkaGroupOffsets } from '../status/kafka-status.types.js';

/** Injection token of the KafkaMetricsOptions (`KafkaMetricsModule.forRoot(options)`). */
export const KAFKA_METRICS_OPTIONS = Symbol('KAFKA_METRICS_OPTIONS');

/** Options of `KafkaMetricsModule.forRoot`. */
export interface KafkaMetricsOptions {
  /** Registry the metrics are registered in. Default: a registry of their own (`KafkaMetricsService.registry`). */
  registry?: Registry;
  /** Prepended to every metric name. Default ''. */
  prefix?: string;
  /** Upper bounds, in seconds, of the handler duration histogram. */
  durationBuckets?: number[];
}

/** Default upper bounds, in seconds, of the handler duration histogram (0.5 ms to 10 s). */
export const DEFAULT_DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const MEMBER_STATES: readonly MemberState[] = ['starting', 'joined', 'rebalancing', 'crashed', 'stopped'];

/** Counts of one partition of one group, bumped on the hot path without any allocation. */
interface PartitionCounts {
  readonly partition: string;
  processed: number;
  failed: number;
  deadLettered: number;
}

interface TopicInstruments {
  /** Indexed by partition number. */
  readonly partitions: PartitionCounts[];
  readonly duration: { observe(seconds: number): void };
}

/**
 * Prometheus metrics of the consumer groups (prom-client):
 * - `kafka_consumer_messages_processed_total`, `..._failed_total` (failed handler attempts),
 *   `..._dead_lettered_total`, labelled group, topic, partition;
 * - `kafka_consumer_handler_duration_seconds` (histogram of successful handler runs), labelled group, topic;
 * - `kafka_consumer_group_lag` (log-end offset minus committed offset), labelled group, topic, partition,
 *   fetched from the broker when scraped;
 * - `kafka_consumer_group_members` (members in this process, by state), labelled group, state;
 * - `kafka_consumer_group_coordinator_members` (members of every process and client, as the group coordinator
 *   describes the group), labelled group, protocol (how each joined: classic, consumer for KIP-848, unknown),
 *   fetched from the broker when scraped in the same round trip as the lag.
 *
 * It observes every member through `KafkaGroupsServer.addObserver`, set in `onModuleInit` (before the transport
 * listens). Per message it only bumps numbers in objects made once per group/topic/partition; prom-client sees
 * the counters when scraped.
 */
@Injectable()
export class KafkaMetricsService implements MemberObserver, OnModuleInit {
  readonly registry: Registry;
  private readonly logger = new Logger(KafkaMetricsService.name);
  /** group -> topic -> instruments. */
  private readonly instruments = new Map<string, Map<string, TopicInstruments>>();
  private readonly histogram: Histogram<'group' | 'topic'>;

  constructor(
    private readonly server: KafkaGroupsServer,
    status: KafkaStatusService,
    @Optional() @Inject(KAFKA_METRICS_OPTIONS) options: KafkaMetricsOptions = {},
  ) {
    this.registry = options.registry ?? new Registry();
    const prefix = options.prefix ?? '';
    const registers = [this.registry];
    const partitionLabels = ['group', 'topic', 'partition'] as const;

    const counter = (name: string, help: string, pick: (c: PartitionCounts) => number) => {
      const instruments = this.instruments;
      return new Counter({
        name: `${prefix}${name}`,
        help,
        labelNames: partitionLabels,
        registers,
        collect() {
          this.reset();
          for (const [group, topics] of instruments) {
            for (const [topic, { partitions }] of topics) {
              for (const counts of partitions) {
                if (counts) this.inc({ group, topic, partition: counts.partition }, pick(counts));
              }
            }
          }
        },
      });
    };
    counter(
      'kafka_consumer_messages_processed_total',
      'Messages whose handler succeeded',
      (c) => c.processed,
    );
    counter(
      'kafka_consumer_messages_failed_total',
      'Failed handler attempts (each retry counts)',
      (c) => c.failed,
    );
    counter(
      'kafka_consumer_messages_dead_lettered_total',
      'Messages sent to the dead-letter topic after their last attempt',
      (c) => c.deadLettered,
    );

    this.histogram = new Histogram({
      name: `${prefix}kafka_consumer_handler_duration_seconds`,
      help: 'Duration of successful handler runs, through the Nest pipeline',
      labelNames: ['group', 'topic'],
      buckets: options.durationBuckets ?? DEFAULT_DURATION_BUCKETS,
      registers,
    });

    // The two gauges fed by the broker read the same answers: prom-client collects a scrape's metrics at once, so
    // the second shares the first one's calls instead of asking the broker again.
    let scrape: Promise<PromiseSettledResult<{ group: string; offsets: KafkaGroupOffsets }>[]> | undefined;
    const offsetsOfGroups = () =>
      (scrape ??= Promise.allSettled(
        status.runners.map(async (runner) => ({
          group: runner.groupId,
          offsets: await status.offsets(runner.groupId, runner.topics),
        })),
      ).finally(() => {
        scrape = undefined;
      }));

    new Gauge({
      name: `${prefix}kafka_consumer_group_lag`,
      help: 'Log-end offset minus committed offset, per partition (fetched from the broker on scrape)',
      labelNames: partitionLabels,
      registers,
      async collect() {
        const results = await offsetsOfGroups();
        // Reset only now, synchronously before setting: a concurrent scrape never sees a half-filled gauge.
        this.reset();
        for (const result of results) {
          if (result.status !== 'fulfilled') continue;
          const { group, offsets } = result.value;
          for (const p of offsets.partitions) {
            this.set({ group, topic: p.topic, partition: String(p.partition) }, p.lag);
          }
        }
      },
    });

    new Gauge({
      name: `${prefix}kafka_consumer_group_coordinator_members`,
      help: 'Members of the consumer group in every process, as the group coordinator describes it, by how they joined',
      labelNames: ['group', 'protocol'],
      registers,
      async collect() {
        const results = await offsetsOfGroups();
        this.reset();
        for (const result of results) {
          if (result.status !== 'fulfilled') continue;
          const { group, offsets } = result.value;
          const byProtocol = { classic: 0, consumer: 0, unknown: 0 };
          for (const member of offsets.members) byProtocol[member.protocol ?? 'unknown']++;
          for (const [protocol, count] of Object.entries(byProtocol)) this.set({ group, protocol }, count);
        }
      },
    });

    new Gauge({
      name: `${prefix}kafka_consumer_group_members`,
      help: 'Members of the consumer group running in this process, by state',
      labelNames: ['group', 'state'],
      registers,
      collect() {
        this.reset();
        for (const runner of status.runners) {
          for (const state of MEMBER_STATES) {
            this.set(
              { group: runner.groupId, state },
              runner.members.filter((m) => m.state === state).length,
            );
          }
        }
      },
    });
  }

  onModuleInit(): void {
    if (this.server.groups.length > 0) {
      this.logger.warn(
        'The consumer groups started before the metrics observer was set: messages go uncounted',
      );
    }
    this.server.addObserver(this);
  }

  /** The metrics in Prometheus text format (with the lag fetched from the broker). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  processed(groupId: string, topic: string, partition: number, durationMs: number): void {
    const instruments = this.topicInstruments(groupId, topic);
    this.partitionCounts(instruments, partition).processed++;
    instruments.duration.observe(durationMs / 1000);
  }

  failed(groupId: string, topic: string, partition: number): void {
    this.partitionCounts(this.topicInstruments(groupId, topic), partition).failed++;
  }

  deadLettered(groupId: string, topic: string, partition: number): void {
    this.partitionCounts(this.topicInstruments(groupId, topic), partition).deadLettered++;
  }

  private topicInstruments(groupId: string, topic: string): TopicInstruments {
    let topics = this.instruments.get(groupId);
    if (!topics) this.instruments.set(groupId, (topics = new Map()));
    let instruments = topics.get(topic);
    if (!instruments) {
      instruments = { partitions: [], duration: this.histogram.labels(groupId, topic) };
      topics.set(topic, instruments);
    }
    return instruments;
  }

  private partitionCounts(instruments: TopicInstruments, partition: number): PartitionCounts {
    return (instruments.partitions[partition] ??= {
      partition: String(partition),
      processed: 0,
      failed: 0,
      deadLettered: 0,
    });
  }
}
