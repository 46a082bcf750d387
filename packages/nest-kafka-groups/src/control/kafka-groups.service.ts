import { Inject, Injectable, Logger } from '@nestjs/common';
import { clientRetryOf } from '../client/kafka-client.factory.js';
import type { Admin, Kafka } from '../client/kafkajs.js';
import { KafkaConsumerProtocolGroupError } from '../errors/kafka-consumer-protocol-group.error.js';
import { KafkaGroupNotEmptyError } from '../errors/kafka-group-not-empty.error.js';
import { KafkaGroupsShuttingDownError } from '../errors/kafka-groups-shutting-down.error.js';
import { KafkaUnknownGroupError } from '../errors/kafka-unknown-group.error.js';
import { KafkaUnknownGroupTopicError } from '../errors/kafka-unknown-group-topic.error.js';
import { quotedTopics } from '../errors/topic-names.js';
import { KAFKA_CLIENT, KAFKA_MODULE_OPTIONS } from '../kafka.constants.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, type KafkaModuleOptions } from '../kafka.options.js';
import type { GroupRunner } from '../server/group-runner.js';
import { KafkaGroupsServer } from '../server/kafka-groups.server.js';
import { describeGroup } from '../status/describe-group.js';
import { memberStatus } from '../status/member-status.js';
import type { KafkaMemberStatus } from '../status/kafka-status.types.js';
import { type KafkaSeekResult, type KafkaSeekTarget, planSeek, seekOffsets } from './seek-target.js';

/** One consumer group of this process as `KafkaGroups.list()` shows it (a snapshot: nothing in it is live). */
export interface KafkaGroupControlStatus {
  groupId: string;
  topics: string[];
  /** Started (by `autoStart` or `start`) and not stopped since; its members may still be joining. */
  running: boolean;
  autoStart: boolean;
  /** Topics paused by `pause`, kept paused across rebalances and restarts of the group until `resume`. */
  pausedTopics: string[];
  members: KafkaMemberStatus[];
}

/** Options of `KafkaGroups.seek`. */
export interface KafkaSeekOptions {
  /**
   * How long to wait for the group to become Empty once this process's members left it (members of other
   * processes must leave too). Default 10000.
   */
  emptyTimeoutMs?: number;
}

const DEFAULT_EMPTY_TIMEOUT_MS = 10_000;
const EMPTY_POLL_MS = 200;
/** Admin calls of a seek: a few quick retries; the group must be Empty anyway, nothing to wait out. */
const SEEK_ADMIN_RETRY = { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 };

/**
 * Runtime control of this process's consumer groups (the registry): list them, pause and resume their topics,
 * stop and start their members, move their committed offsets. Transitions of one group (start, stop, seek) run one
 * after another; pause and resume apply at once and are re-applied by every member after each join.
 *
 * ```ts
 * constructor(private readonly groups: KafkaGroups) {}
 * await this.groups.stop('airnav');            // in-flight messages finish, offsets committed, members leave
 * await this.groups.seek('airnav', { topic: 'live-flight-airnav', timestamp: Date.parse('2026-12-01T12:00Z') });
 * await this.groups.start('airnav');
 * ```
 */
@Injectable()
export class KafkaGroups {
  private readonly logger = new Logger(KafkaGroups.name);

  constructor(
    private readonly server: KafkaGroupsServer,
    @Inject(KAFKA_CLIENT) private readonly kafka: Kafka,
    @Inject(KAFKA_MODULE_OPTIONS) private readonly options: KafkaModuleOptions,
  ) {}

  /** Every consumer group of this process (empty before the transport started listening). */
  list(): KafkaGroupControlStatus[] {
    return this.server.groups.map((runner) => ({
      groupId: runner.groupId,
      topics: runner.topics,
      running: runner.running,
      autoStart: runner.plan.settings.autoStart,
      pausedTopics: [...runner.pausedTopics],
      members: runner.members.map(memberStatus),
    }));
  }

  isRunning(groupId: string): boolean {
    return this.runner(groupId).running;
  }

  /**
   * Stops fetching the topics (all of the group's when none are named) on every member of the group in this
   * process; batches already being handled finish. A handler's topic pauses its retry topics too. Holds across
   * rebalances and stop/start until `resume`. A group that is stopped keeps the pause for when it starts.
   */
  pause(groupId: string, topics?: readonly string[]): void {
    const runner = this.runner(groupId);
    const chosen = runner.pause(this.topicsOf(runner, topics));
    this.logger.log(`Paused ${quotedTopics(chosen)} of group "${groupId}"`);
  }

  /**
   * Undoes `pause` for the topics (all when none are named; a handler's topic with its retry topics). A partition
   * the library holds itself (waiting for a retry delay or a dead-letter write, or stopped) stays paused until
   * that ends.
   */
  resume(groupId: string, topics?: readonly string[]): void {
    const runner = this.runner(groupId);
    const chosen = runner.resume(this.topicsOf(runner, topics));
    this.logger.log(`Resumed ${quotedTopics(chosen)} of group "${groupId}"`);
  }

  /**
   * Stops the group's members in this process: fetching stops, in-flight messages finish (within
   * `shutdownTimeoutMs`; `ctx.signal` is aborted), processed offsets are committed and the members leave the group,
   * so other processes' members take the partitions at once. Resolves when they left; a no-op when stopped.
   */
  async stop(groupId: string): Promise<void> {
    const runner = this.runner(groupId);
    await runner.serially(async () => {
      if (!runner.running) return;
      this.logger.log(`Stopping group "${groupId}"`);
      await runner.halt(this.drainTimeoutMs());
    });
  }

  /**
   * Starts the group's members in this process (after `stop`, or with `autoStart: false`). Resolves once they are
   * starting: they join in the background, retrying as at start-up. Throws KafkaGroupsShuttingDownError once the
   * application is shutting down.
   */
  async start(groupId: string): Promise<void> {
    const runner = this.runner(groupId);
    await runner.serially(async () => {
      if (runner.closed) throw new KafkaGroupsShuttingDownError(groupId, 'start');
      if (runner.running) return;
      this.logger.log(`Starting group "${groupId}"`);
      void runner.start();
    });
  }

  /**
   * Moves the group's committed offsets on one topic: stops the group's members in this process, waits until the
   * group is Empty (throws KafkaGroupNotEmptyError naming the members of other processes still in it, and
   * KafkaConsumerProtocolGroupError, naming them too, for a group of the consumer group protocol), commits the
   * new offsets through the admin API, and starts the members again if they were running. Every member, here or
   * elsewhere, then reads from the new offsets: a seek back replays each message from there once.
   */
  async seek(
    groupId: string,
    target: KafkaSeekTarget,
    options: KafkaSeekOptions = {},
  ): Promise<KafkaSeekResult> {
    const runner = this.runner(groupId);
    const plan = planSeek(groupId, runner.topics, target);
    const emptyTimeoutMs = options.emptyTimeoutMs ?? DEFAULT_EMPTY_TIMEOUT_MS;
    return runner.serially(async () => {
      if (runner.closed) throw new KafkaGroupsShuttingDownError(groupId, 'seek');
      const wasRunning = runner.running;
      if (wasRunning) await runner.halt(this.drainTimeoutMs());
      const admin = this.kafka.admin({ retry: { ...clientRetryOf(this.options), ...SEEK_ADMIN_RETRY } });
      try {
        await admin.connect();
        await waitUntilEmpty(admin, groupId, emptyTimeoutMs);
        const ranges = await admin.fetchTopicOffsets(plan.topic);
        const byTimestamp =
          plan.kind === 'timestamp'
            ? await admin.fetchTopicOffsetsByTimestamp(plan.topic, plan.timestamp)
            : [];
        const partitions = seekOffsets(groupId, plan, ranges, byTimestamp);
        await admin.setOffsets({ groupId, topic: plan.topic, partitions });
        this.logger.log(
          `Group "${groupId}" now reads ${partitions.map((p) => `${plan.topic}[${p.partition}]@${p.offset}`).join(', ')}`,
        );
        return { groupId, topic: plan.topic, partitions };
      } finally {
        await admin.disconnect().catch(() => undefined);
        // Also after a failed seek: the group goes on from its committed offsets as before.
        if (wasRunning) void runner.start();
      }
    });
  }

  private runner(groupId: string): GroupRunner {
    const runner = this.server.groups.find((r) => r.groupId === groupId);
    if (!runner)
      throw new KafkaUnknownGroupError(
        groupId,
        this.server.groups.map((r) => r.groupId),
      );
    return runner;
  }

  private topicsOf(runner: GroupRunner, topics: readonly string[] | undefined): string[] {
    if (topics === undefined || topics.length === 0) return runner.topics;
    for (const topic of topics) {
      if (!runner.topics.includes(topic))
        throw new KafkaUnknownGroupTopicError(runner.groupId, topic, runner.topics);
    }
    return [...topics];
  }

  private drainTimeoutMs(): number {
    return this.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  }
}

/**
 * Polls the group's description until the coordinator reports it Empty (or Dead, or does not answer for it: it has
 * no state at all). An Empty group of the consumer group protocol (KIP-848) is seeked too: kafkajs's commit joins it
 * with JoinGroup, which the broker answers by converting the empty group to a classic one, offsets kept. While it has
 * members it is refused with KafkaConsumerProtocolGroupError; it may turn classic while this waits, when its last
 * consumer-protocol member leaves.
 */
async function waitUntilEmpty(admin: Admin, groupId: string, timeoutMs: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    const group = await describeGroup(admin, groupId);
    if (group.groupProtocol === null || group.state === 'Empty') return;
    if (Date.now() - started >= timeoutMs) {
      if (group.groupProtocol === 'consumer') {
        throw new KafkaConsumerProtocolGroupError(
          groupId,
          group.state,
          group.members.map(({ memberId, clientId, clientHost, protocol }) => ({
            memberId,
            clientId,
            clientHost,
            protocol,
          })),
          timeoutMs,
        );
      }
      throw new KafkaGroupNotEmptyError(
        groupId,
        group.state ?? 'unknown',
        group.members.map(({ memberId, clientId, clientHost }) => ({ memberId, clientId, clientHost })),
        timeoutMs,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, EMPTY_POLL_MS));
  }
}
