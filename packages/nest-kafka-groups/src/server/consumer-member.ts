import { Logger } from '@nestjs/common';
import {
  beforeRejoin,
  coordinatorProblem,
  fetchedBeforeDeletion,
  isConnectionError,
  abandonRunningBatches,
  onRebalance,
  type PartitionAssigner,
  resolveInCurrentGroup,
  undecodableBatchError,
} from '../client/kafkajs.js';
import { onPositionReset } from '../client/offset-out-of-range.js';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, RetryOptions } from '../client/kafkajs.js';
import { KafkaGroupContext } from '../context/kafka-group.context.js';
import type { DeadLetterPublisher } from '../dead-letter/dead-letter-publisher.js';
import { KafkaNonRetryableError } from '../errors/kafka-non-retryable.error.js';
import { quotedTopics } from '../errors/topic-names.js';
import type { KafkaHandlerTimeoutError } from '../errors/kafka-handler-timeout.error.js';
import type { KafkaRestartBackoff, ResolvedGroupSettings } from '../kafka.options.js';
import { decodePayload } from '../limits/message-limits.js';
import { printable, printableStack } from '../logging/printable.js';
import { asError } from '../retry/failure-classifier.js';
import { BatchDispatch } from './batch-dispatch.js';
import { BatchWatch } from './batch-watch.js';
import { DEAD_LETTER, decide, type FailureDecision, RESOLVE, STOP } from './failure-policy.js';
import type { GroupRoute } from './group-route.js';
import type { MemberObserver } from './member-observer.js';
import { compareOffsets, type PartitionFailure, PartitionLedger, partitionKey } from './partition-ledger.js';
import { groupProtocolError, isInconsistentGroupProtocol } from './group-protocol-mismatch.js';
import { type KafkaRebalanceListener, MemberRebalanceListeners } from './rebalance-listener.js';
import { ResumeTimers } from './resume-timers.js';
import type { RetryDestination } from '../retry/retry-topic-chain.js';
import { msUntilDue } from '../retry/retry-topic-headers.js';
import {
  authenticationFailureOf,
  authorizationFailureOf,
  type SecurityIdentity,
  securityFailures,
} from '../client/security-failures.js';
import { KafkaAuthorizationError } from '../errors/kafka-authorization.error.js';

/** Lifecycle of one group member: starting, joined, rebalancing, crashed (recreated with backoff), stopped. */
export type MemberState = 'starting' | 'joined' | 'rebalancing' | 'crashed' | 'stopped';

export interface ConsumerMemberConfig {
  kafka: Kafka;
  group: ResolvedGroupSettings;
  routes: ReadonlyMap<string, GroupRoute>;
  deadLetters: DeadLetterPublisher;
  assigners: PartitionAssigner[];
  clientRetry: RetryOptions;
  /** Who this client is to the brokers, for authentication and authorization messages. */
  identity: SecurityIdentity;
  /** Delays before a consumer that could not start (or crashed for good) is created again. */
  restartBackoff: KafkaRestartBackoff;
  /** 0-based index of this member within the process, for logs. */
  index: number;
  observer?: MemberObserver;
  /** Topics the application paused (KafkaGroups.pause): kept paused across joins, shared by the group's members. */
  pausedTopics: ReadonlySet<string>;
  /** The group's `forFeature` rebalance listeners. */
  rebalanceListeners?: readonly KafkaRebalanceListener[];
  /** Told after `state` or `failure` may have changed (joins, rebalances, crashes, stops; never per message). */
  onStateChange?: () => void;
}

/** kafkajs's default, for the heartbeat timer of a batch when the group does not set one. */
const KAFKAJS_HEARTBEAT_INTERVAL_MS = 3_000;
/** kafkajs's default rebalance timeout, when the group does not set one. */
const KAFKAJS_REBALANCE_TIMEOUT_MS = 60_000;
/** kafkajs's default session timeout, when the group does not set one. */
const KAFKAJS_SESSION_TIMEOUT_MS = 30_000;
/**
 * How long a failed message's dead-letter or retry-topic write is awaited in the batch: a healthy broker answers
 * well within it, and the partition goes on without a pause and a fetch per failure (with retry topics, every
 * failure is a write); a slower write pauses the partition instead of holding up the fetch.
 */
const INLINE_WRITE_MS = 250;
/**
 * After a stop abandoned the handlers still running: how long the commit, the LeaveGroup and the disconnect (a few
 * round trips to a healthy broker) are awaited before the member counts as stopped anyway.
 */
const LEAVE_AFTER_ABANDON_MS = 3_000;
/** A member the ACLs keep out stays stopped and checks again this rarely (ACLs change by hand). */
const AUTHORIZATION_RECHECK_MS = 60_000;

/**
 * One member of a consumer group: a kafkajs consumer and its loop. Messages of a partition are handled one at a
 * time in order (partitions concurrently); an offset is resolved only after its handler succeeded or the message
 * was dead-lettered, and kafkajs commits resolved offsets after each batch and before rejoining a rebalance.
 * A failure pauses just its partition and a timer resumes it (the next fetch restarts at the failed offset), so
 * the other partitions flow and heartbeats go on. A consumer that crashes for good is recreated with backoff.
 * Decisions after a handler settled come from `decide` (failure-policy.ts); this class connects, runs, recovers.
 */
export class ConsumerMember {
  state: MemberState = 'starting';
  memberId?: string;
  assignment: Record<string, number[]> = {};
  lastError?: string;
  /**
   * "topic:partition" -> why it is stopped: a message exhausted its retries with dead letters off, or its
   * dead-letter write failed in a way that needs someone to act (topic missing, not authorized, too large).
   */
  readonly stoppedPartitions = new Map<string, string>();
  readonly counts = { processed: 0, failed: 0, deadLettered: 0 };
  /**
   * Why the member does not consume though it should, when it is not a rebalance: its brokers cannot be reached,
   * or its consumer crashed for good (it is recreated with backoff). Cleared by a join.
   */
  failure?: 'unreachable' | 'crashed';

  private readonly logger: Logger;
  private shutdown = new AbortController();
  private consumer?: Consumer;
  /**
   * The start in progress once its consumer connected: stop() waits for it (bounded), so a consumer that is
   * joining leaves the group instead of being left in it. One still connecting has nothing to leave.
   */
  private joining?: Promise<void>;
  private readonly ledger = new PartitionLedger();
  /** Stops listening for out-of-range resets of the current member id (their partitions' stale floor goes). */
  private unwatchResets?: () => void;
  private readonly resumeTimers: ResumeTimers;
  /**
   * "topic:partition" keys this member paused itself (retry backoff, dead-letter write, stopped partition): a
   * resume by the application leaves them paused, and their own resume leaves a topic the application paused.
   */
  private readonly held = new Set<string>();
  /** The batches running now, each with its heartbeat timer and `ctx.signal`. */
  private readonly batches = new Set<BatchWatch>();
  /** Bumped on every join and crash: a batch of an older generation stops and resolves nothing more. */
  private generation = 0;
  private recreateTimer?: NodeJS.Timeout;
  /** The `eachBatch` the current consumer runs with: kafkajs's current consumer group is found by it. */
  private eachBatchFn?: object;
  /**
   * When the waits before the next rejoin must end (set by the first, cleared by the join): kafkajs calls the hook
   * again on each join attempt of the same rebalance.
   */
  private rejoinWaitEnds?: number;
  private recreateAttempts = 0;
  private securityError?: ReturnType<ConsumerMember['securityFailure']>;
  /**
   * A topic denial that stopped this member, after the join of its recheck and before a fetch went through: the
   * group ACL lets the member join while the topic ACL may still refuse its fetches, so it is not healthy yet.
   */
  private pendingDenial?: KafkaAuthorizationError;
  /** Removes the fetch listeners that lift `pendingDenial`: one pair at a time, whatever the rejoins. */
  private unwatchDenial?: () => void;
  /** Runs the fetched batches of batch handlers (`{ batch: true }`); see batch-dispatch.ts. */
  private readonly batchDispatch: BatchDispatch;
  private readonly rebalanceListeners?: MemberRebalanceListeners;

  constructor(private readonly config: ConsumerMemberConfig) {
    this.logger = new Logger(`ConsumerMember:${config.group.groupId}#${config.index}`);
    this.resumeTimers = new ResumeTimers((key, error) =>
      this.logger.warn(`Could not resume ${key} (${asError(error).message}); the next join resumes it`),
    );
    this.batchDispatch = new BatchDispatch({
      groupId: config.group.groupId,
      ledger: this.ledger,
      logger: this.logger,
      counts: this.counts,
      observer: config.observer,
      stopping: () => this.shutdown.signal.aborted,
      generation: () => this.generation,
      failMessage: async (route, partition, key, message, watch, error) =>
        this.handle(route, partition, key, message, watch, error),
      stopPartition: (route, key, where, failure, error) =>
        this.stopPartition(route, key, where, failure, error),
      pausePartition: (payload, route, partition, key, decision) =>
        this.pausePartition(payload, route, partition, key, decision),
    });
    if (config.rebalanceListeners?.length)
      this.rebalanceListeners = new MemberRebalanceListeners(
        config.rebalanceListeners,
        config.group.groupId,
        config.index,
        this.logger,
      );
  }

  /** Partitions paused on the consumer now: waiting out a retry backoff or a dead-letter write, or stopped. */
  pausedPartitions(): { topic: string; partitions: number[] }[] {
    return this.consumer?.paused() ?? [];
  }

  /** Messages being handled right now (one per running batch). */
  get inFlight(): number {
    return this.batches.size;
  }

  get groupId(): string {
    return this.config.group.groupId;
  }

  /** Why the group coordinator keeps this member from working (no answer for a session timeout), for health. */
  get coordinatorProblem(): string | undefined {
    return this.state === 'joined' && this.eachBatchFn ? coordinatorProblem(this.eachBatchFn) : undefined;
  }

  /** The topic denial not yet lifted by a fetch that went through, for health (see pendingDenial). */
  get deniedUntilFetch(): string | undefined {
    return this.pendingDenial?.message;
  }

  /**
   * What keeps `deniedUntilFetch` from being lifted: no fetch yet, or paused partitions (a fetch that leaves one out
   * proves nothing about it), for health.
   */
  get deniedUntilFetchWaitsFor(): string | undefined {
    if (!this.pendingDenial) return undefined;
    const paused = this.pausedPartitions();
    return paused.length === 0
      ? 'no fetch went through yet'
      : `not confirmed while partitions are paused: ${paused.map((p) => `${p.topic}[${p.partitions.join(',')}]`).join(', ')}`;
  }

  get topics(): string[] {
    return [...this.config.routes.keys()];
  }

  /** The topics as log lines name them: "a", "b". */
  get topicList(): string {
    return quotedTopics(this.topics);
  }

  /** Starts the consumer; never throws: a failed start is logged and retried with backoff. */
  async start(): Promise<void> {
    if (this.shutdown.signal.aborted) return;
    const consumer = this.createConsumer();
    this.consumer = consumer;
    try {
      await consumer.connect();
    } catch (error) {
      if (consumer === this.consumer) this.onDead(consumer, error);
      else await consumer.disconnect().catch(() => undefined);
      return;
    }
    const joining = this.join(consumer);
    this.joining = joining;
    await joining;
  }

  /**
   * Starts a member that `stop()` stopped (KafkaGroups.start): a fresh consumer joins the group. Attempt counts
   * are forgotten, as after a restart of the process.
   */
  restart(): Promise<void> {
    if (this.shutdown.signal.aborted) {
      this.shutdown = new AbortController();
      this.ledger.joined(new Set());
      this.state = 'starting';
      this.failure = undefined;
      this.config.onStateChange?.();
    }
    return this.start();
  }

  /** Pauses the assigned partitions of these topics now; every join pauses them again (kafkajs forgets). */
  pauseTopics(topics: Iterable<string>): void {
    const consumer = this.consumer;
    if (!consumer || this.state !== 'joined') return;
    const pausing = [...topics].flatMap((topic) => {
      const partitions = this.assignment[topic];
      return partitions?.length ? [{ topic, partitions }] : [];
    });
    this.tryOn(consumer, 'pause', pausing);
  }

  /** Resumes the assigned partitions of these topics, except those held by a retry, dead letter or stop. */
  resumeTopics(topics: Iterable<string>): void {
    const consumer = this.consumer;
    if (!consumer || this.state !== 'joined') return;
    const resuming = [...topics].flatMap((topic) => {
      const partitions = (this.assignment[topic] ?? []).filter((p) => !this.held.has(partitionKey(topic, p)));
      return partitions.length ? [{ topic, partitions }] : [];
    });
    this.tryOn(consumer, 'resume', resuming);
  }

  /** A hold of this member's own ends: the partition resumes unless the application paused its topic. */
  private release(consumer: Consumer, topic: string, partition: number): void {
    this.held.delete(partitionKey(topic, partition));
    if (!this.config.pausedTopics.has(topic)) consumer.resume([{ topic, partitions: [partition] }]);
  }

  private tryOn(
    consumer: Consumer,
    action: 'pause' | 'resume',
    partitions: { topic: string; partitions: number[] }[],
  ) {
    if (partitions.length === 0) return;
    try {
      consumer[action](partitions);
    } catch (error) {
      // kafkajs is rebuilding its consumer group after a crash: the join that follows applies the pauses.
      this.logger.debug(`Could not ${action} ${JSON.stringify(partitions)} (${asError(error).message})`);
    }
  }

  private async join(consumer: Consumer): Promise<void> {
    try {
      // stop() may come at any step: a consumer it already let go of must not subscribe, join nor consume.
      if (consumer === this.consumer) {
        const { fromBeginning } = this.config.group;
        const [main, retry] = partitionTopics(this.config.routes);
        await consumer.subscribe({ topics: main, fromBeginning });
        // From the start: a record written before the group first read its retry topic must not be skipped.
        if (retry.length > 0) await consumer.subscribe({ topics: retry, fromBeginning: true });
      }
      if (consumer === this.consumer) {
        const eachBatch = (payload: EachBatchPayload) => this.eachBatch(payload);
        this.eachBatchFn = eachBatch;
        beforeRejoin(eachBatch, () => this.beforeRejoin(consumer));
        const listeners = this.rebalanceListeners;
        if (listeners) {
          onRebalance(eachBatch, {
            // A consumer that stop() let go of reports no join: it leaves at once.
            joined: async () => {
              if (consumer === this.consumer) await listeners.assigned(this.memberId!, this.assignment);
            },
            givingUp: (committed) => listeners.givenUp(committed && this.batches.size === 0),
          });
        }
        await consumer.run({
          autoCommit: true,
          autoCommitInterval: this.config.group.commitIntervalMs,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: this.config.group.partitionsConsumedConcurrently,
          eachBatch,
        });
      }
    } catch (error) {
      if (consumer === this.consumer) return this.onDead(consumer, error);
    }
    if (consumer !== this.consumer) await consumer.disconnect().catch(() => undefined);
  }

  /**
   * Stops fetching, aborts `ctx.signal`, lets the in-flight messages and dead-letter writes finish (bounded by
   * `timeoutMs`), commits what was processed and leaves the group so the other members take the partitions at once.
   * A failure the shutdown caused is no attempt: that message stays uncommitted and is redelivered.
   */
  async stop(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.shutdown.abort();
    for (const batch of this.batches) batch.controller.abort(this.shutdown.signal.reason);
    clearTimeout(this.recreateTimer);
    this.resumeTimers.clear();
    const started = this.ledger.cancelDeadLetters();
    this.unwatchResets?.();
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer && started.length > 0) {
      // Nothing is handled any more: no fetch while the writes finish.
      this.tryOn(
        consumer,
        'pause',
        Object.entries(this.assignment).map(([topic, partitions]) => ({ topic, partitions })),
      );
      await this.settleDeadLetters(started, timeoutMs, 'stop');
    }
    const stopping = Promise.all([
      consumer?.disconnect().catch((error: Error) => this.logger.warn(`Disconnect failed: ${error.message}`)),
      this.joining,
    ]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
    });
    const result = await Promise.race([stopping, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') await this.abandonBatches(consumer, stopping, timeoutMs);
    this.state = 'stopped';
    this.config.onStateChange?.();
  }

  /**
   * The stop's budget ran out with handlers still running (they ignore `ctx.signal`): they are abandoned, not
   * awaited. What each batch handled before its current message is resolved, kafkajs's runner stops waiting for
   * the batches, commits, leaves the group (the partitions move at once) and disconnects, so nothing of this
   * member keeps the process alive. The current messages and those after them are redelivered to the next owner.
   */
  private async abandonBatches(
    consumer: Consumer | undefined,
    stopping: Promise<unknown>,
    timeoutMs: number,
  ): Promise<void> {
    const running = [...this.batches];
    for (const watch of running) {
      // No heartbeat from the hung batch any more: the client is disconnecting. Nor is it in flight for a later
      // start of the group (KafkaGroups.start): that joins with a new generation, in which the batch resolves nothing.
      watch.close();
      this.batches.delete(watch);
      if (watch.lastResolved !== undefined && this.eachBatchFn !== undefined)
        resolveInCurrentGroup(this.eachBatchFn, watch.topic, watch.partition, watch.lastResolved);
    }
    const where = running.map((watch) => watch.where()).join(', ');
    this.logger.warn(
      `Shutdown timed out after ${timeoutMs} ms (shutdownTimeoutMs) in group ${this.groupId}` +
        (running.length > 0
          ? ` with ${running.length} handler(s) still running, abandoned: ${where}; ` +
            'the offsets before them are committed, they and the records after them on their partitions are redelivered'
          : ` (state ${this.state}); uncommitted messages will be redelivered`),
    );
    // With no batch running, kafkajs waits for the broker (a commit, the LeaveGroup): nothing to give up on.
    if (running.length === 0 || consumer === undefined || this.eachBatchFn === undefined) return;
    abandonRunningBatches(this.eachBatchFn);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      stopping,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, LEAVE_AFTER_ABANDON_MS))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Before kafkajs rejoins the group (the partitions may move): the dead-letter and retry-topic sends still out
   * finish, and the offsets of the records written are resolved; true tells the runner to commit them before it
   * rejoins. The waits before one join take half the rebalance timeout in all (the group waits that long for this
   * member's JoinGroup), however often kafkajs tries to join, and at most half the session timeout (no heartbeat
   * goes out meanwhile, and the coordinator expires a member that has not sent its JoinGroup yet).
   */
  private async beforeRejoin(consumer: Consumer): Promise<boolean> {
    if (consumer !== this.consumer || !this.ledger.hasFailures) return false;
    const started = this.ledger.deadLetterFailures();
    if (started.length === 0) return false;
    const { rebalanceTimeout, sessionTimeout } = this.config.group.consumer;
    const now = Date.now();
    this.rejoinWaitEnds ??= now + (rebalanceTimeout ?? KAFKAJS_REBALANCE_TIMEOUT_MS) / 2;
    const boundMs = Math.min(this.rejoinWaitEnds - now, (sessionTimeout ?? KAFKAJS_SESSION_TIMEOUT_MS) / 2);
    return (await this.settleDeadLetters(started, Math.max(0, boundMs), 'rejoin')) > 0;
  }

  /**
   * Before a stop or a rejoin gives up the partitions: lets the dead-letter and retry-topic sends still out finish
   * (within `boundMs`) and resolves the offsets of the records written, so the commit that follows includes them
   * and the next owner starts after them, as Spring's container finishes its recoverer before it commits. A write
   * that fails or outlasts the bound stays uncommitted: the next owner handles the record again. Returns how many
   * offsets it resolved.
   */
  private async settleDeadLetters(
    started: { key: string; failure: PartitionFailure }[],
    boundMs: number,
    before: 'stop' | 'rejoin',
  ): Promise<number> {
    const out = started.filter(({ failure }) => failure.deadLetter!.sending);
    if (out.length > 0) {
      this.logger.log(
        `Before the ${before}: waiting for ${out.length} dead-letter or retry write(s) in flight`,
      );
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(out.map(({ failure }) => failure.deadLetter!.sendsSettled())),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs))),
      ]);
      clearTimeout(timer);
    }
    let resolved = 0;
    for (const { key, failure } of started) {
      const write = failure.deadLetter!;
      const where = `${key}@${failure.offset}`;
      if (write.state !== 'written') {
        // Before a rejoin the write goes on if the partition stays; a partition that moves is its new owner's.
        if (before === 'stop')
          this.logger.log(
            `${where}: not written to "${write.deadLetterTopic}" by the stop; left uncommitted`,
          );
        continue;
      }
      // Still in its batch's wait (no resolver yet), or no consumer group joined to resolve it in: the batch that
      // fetches it resolves it, seeing the write done.
      if (!failure.resolveOffset?.(failure.offset)) continue;
      this.ledger.settled(key);
      this.stoppedPartitions.delete(key);
      resolved++;
      if (!failure.next || failure.next.deadLetter) this.counts.deadLettered++;
      this.logger.log(
        `${where}: written to "${write.deadLetterTopic}"; its offset is committed before the ${before}`,
      );
    }
    return resolved;
  }

  private createConsumer(): Consumer {
    const { kafka, group, clientRetry, assigners } = this.config;
    const consumer: Consumer = kafka.consumer({
      groupId: group.groupId,
      partitionAssigners: assigners,
      allowAutoTopicCreation: false,
      ...group.consumer,
      // kafkajs restarts a crashed consumer by itself; not one that stop() or a recreation let go of.
      retry: { ...clientRetry, restartOnFailure: async () => consumer === this.consumer },
    });
    const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events;
    consumer.on(GROUP_JOIN, ({ payload }) => {
      if (consumer !== this.consumer) return;
      this.generation++;
      this.rejoinWaitEnds = undefined;
      this.state = 'joined';
      this.memberId = payload.memberId;
      this.assignment = payload.memberAssignment;
      this.lastError = undefined;
      this.recreateAttempts = 0;
      // A stop and start before the fetch of the last recheck: the denial is still to be lifted.
      const security = this.securityError ?? this.pendingDenial;
      this.securityError = undefined;
      this.forgetDenial();
      if (security) this.resolveSecurityError(consumer, security);
      const assigned = new Set<string>();
      for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
        for (const partition of partitions) assigned.add(partitionKey(topic, partition));
      }
      this.ledger.joined(assigned);
      this.unwatchResets?.();
      this.unwatchResets = onPositionReset(this.groupId, payload.memberId, (topic, partition, reason) =>
        reason === 'topic-deleted'
          ? this.forgetDeletedPartition(consumer, topic, partition)
          : this.ledger.positionReset(partitionKey(topic, partition)),
      );
      this.clearPartitionState(consumer);
      this.pauseTopics(this.config.pausedTopics);
      this.holdRetries(consumer);
      this.failure = undefined;
      this.config.onStateChange?.();
      this.logger.log(`Joined as ${payload.memberId}, assigned ${JSON.stringify(payload.memberAssignment)}`);
    });
    consumer.on(REBALANCING, () => {
      if (consumer !== this.consumer) return;
      this.state = 'rebalancing';
      this.config.onStateChange?.();
    });
    consumer.on(CRASH, ({ payload }) => {
      if (consumer !== this.consumer) return;
      this.generation++;
      this.ledger.lostPositions();
      this.clearPartitionState(consumer);
      if (payload.restart) {
        this.state = 'rebalancing';
        this.lastError = payload.error.message;
        const unreachable = isConnectionError(payload.error);
        this.failure = unreachable ? 'unreachable' : undefined;
        this.config.onStateChange?.();
        // An unreachable broker is reported once by the broker connectivity lines, not on every restart.
        const level = unreachable ? 'debug' : 'warn';
        this.logger[level](
          `Consumer on ${this.topicList} crashed, kafkajs restarts it: ${payload.error.message}`,
        );
      } else {
        this.onDead(consumer, payload.error);
      }
    });
    return consumer;
  }

  /**
   * The partition's topic was deleted: what the member recorded against its offsets is forgotten, a batch of it
   * still running stops after its current message and resolves nothing, and a hold of its own (a retry backoff, a
   * dead-letter write, a stop) ends, so a topic created again is fetched at once.
   */
  private forgetDeletedPartition(consumer: Consumer, topic: string, partition: number): void {
    const key = partitionKey(topic, partition);
    for (const watch of this.batches)
      if (watch.topic === topic && watch.partition === partition) watch.topicDeleted = true;
    this.ledger.topicDeleted(key);
    this.stoppedPartitions.delete(key);
    if (consumer === this.consumer && this.held.has(key)) this.release(consumer, topic, partition);
  }

  /** The consumer cannot go on by itself (failed to start or crashed for good): recreate it with backoff. */
  private onDead(consumer: Consumer, error: unknown): void {
    if (consumer !== this.consumer || this.shutdown.signal.aborted) return;
    this.state = 'crashed';
    this.assignment = {};
    this.lastError = asError(error).message;
    this.failure = isConnectionError(error) ? 'unreachable' : 'crashed';
    const { initialDelayMs, maxDelayMs } = this.config.restartBackoff;
    let delay = Math.min(initialDelayMs * 2 ** this.recreateAttempts++, maxDelayMs);
    this.forgetDenial();
    const security = (this.securityError = this.securityFailure(error));
    if (security) {
      this.lastError = security.message;
      const denied = security instanceof KafkaAuthorizationError;
      if (denied) {
        // Shown as stopped; no retry loop against a denial that only an ACL change can lift.
        this.state = 'stopped';
        delay = AUTHORIZATION_RECHECK_MS;
      }
      const what = `group ${this.groupId} member ${this.config.index} ${denied ? 'stopped' : 'cannot connect'}`;
      securityFailures.report(security, `${what}, trying again in ${delay} ms`);
    } else if (isInconsistentGroupProtocol(error)) {
      void this.reportProtocolMismatch(error, delay);
    } else {
      const level = isConnectionError(error) ? 'debug' : 'warn';
      this.logger[level](
        `Consumer on ${this.topicList} stopped (${this.lastError}); recreating it in ${delay} ms`,
      );
    }
    this.consumer = undefined;
    this.generation++;
    this.ledger.lostPositions();
    this.config.onStateChange?.();
    consumer.disconnect().catch(() => undefined);
    this.recreateTimer = setTimeout(() => void this.start(), delay);
  }

  /** Names the protocol and the members the group has (the broker's error names neither) in lastError and a warning. */
  private async reportProtocolMismatch(error: unknown, delay: number): Promise<void> {
    const mismatch = await groupProtocolError(this.config.kafka, this.groupId, this.config.assigners, error);
    if (this.shutdown.signal.aborted) return;
    if (this.state === 'crashed' || this.state === 'starting') this.lastError = mismatch.message;
    this.logger.warn(`${mismatch.message}; trying again in ${delay} ms`);
  }

  /**
   * Tells the security failure that kept the member out resolved once it is: a login or a group denial by the join
   * that just succeeded; a topic denial only by a fetch that started with none of the member's partitions paused
   * (the group ACL lets a member join whose fetches the topic ACL still refuses, and that refusal is then the same
   * failure, not a new one). A pause by the application or by the member itself (a retry's backoff, a dead-letter
   * write) leaves partitions out of a fetch alike.
   */
  private resolveSecurityError(
    consumer: Consumer,
    error: NonNullable<ConsumerMember['securityError']>,
  ): void {
    if (!(error instanceof KafkaAuthorizationError) || error.resource.startsWith('group ')) {
      securityFailures.resolved(error);
      return;
    }
    this.pendingDenial = error;
    // kafkajs names no topic in a refusal, nor in a fetch: a fetch that started with a partition paused (and left it
    // out) proves nothing, nor does one broker's fetch while another's, which may be the refused one, has not
    // answered (kafkajs starts one fetcher per leader together). By broker: each FETCH follows its own FETCH_START.
    const pausedAtStart = new Map<number, boolean>();
    const answered = new Set<number>();
    const removeStart = consumer.on(consumer.events.FETCH_START, ({ payload }) => {
      pausedAtStart.set(payload.nodeId, consumer.paused().length > 0);
    });
    const removeFetch = consumer.on(consumer.events.FETCH, ({ payload }) => {
      if (consumer !== this.consumer) return this.forgetDenial();
      if (pausedAtStart.get(payload.nodeId) !== false) return;
      answered.add(payload.nodeId);
      for (const nodeId of pausedAtStart.keys()) if (!answered.has(nodeId)) return;
      this.forgetDenial();
      securityFailures.resolved(error);
    });
    this.unwatchDenial = () => {
      removeStart();
      removeFetch();
    };
  }

  private forgetDenial(): void {
    this.unwatchDenial?.();
    this.unwatchDenial = undefined;
    this.pendingDenial = undefined;
  }

  /** An authentication or authorization failure of this member's consumer, named; undefined for other errors. */
  private securityFailure(error: unknown) {
    const { identity } = this.config;
    return (
      authenticationFailureOf(error, identity) ??
      authorizationFailureOf(error, identity, {
        operation: 'read',
        topics: this.topics,
        groupId: this.groupId,
      })
    );
  }

  /**
   * No `isStale()` check: the batch goes stale only after a `seek`, which this library never does (and does not
   * expose). Staleness that does happen is handled here: a batch of an older generation stops (its offsets would
   * be resolved into the new generation's commits), and messages at or below the last offset resolved in this
   * generation are skipped (a batch fetched from a former partition leader, or before a metadata rejoin, arriving
   * after a later one was processed).
   */
  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning } = payload;
    const { topic, partition, messages } = batch;
    const route = this.config.routes.get(topic);
    // Once stopping, nothing new starts: what is not handled stays uncommitted and is redelivered. The same for
    // a batch of a paused topic that was fetched before the pause: it is fetched again after the resume.
    if (!route || this.shutdown.signal.aborted || this.config.pausedTopics.has(topic)) return;
    // Fetched before the member saw its topic deleted: the next fetch reads the topic of that name afresh.
    if (fetchedBeforeDeletion(batch)) return;
    const generation = this.generation;
    const key = partitionKey(topic, partition);
    let index = 0;
    const floor = this.ledger.lastResolved(key);
    if (floor !== undefined) {
      while (index < messages.length && compareOffsets(messages[index].offset, floor) <= 0) index++;
      if (index > 0)
        this.logger.debug(`Skipped ${index} stale message(s) of ${topic}[${partition}] up to @${floor}`);
    }
    if (index === messages.length) return;
    // A record batch kafkajs could not decode arrives as one stand-in record: a failure that no attempt can fix.
    const undecodable = undecodableBatchError(messages);

    const watch = new BatchWatch({
      handlerName: route.handlerName,
      topic,
      partition,
      heartbeat,
      heartbeatIntervalMs: this.config.group.consumer.heartbeatInterval ?? KAFKAJS_HEARTBEAT_INTERVAL_MS,
      maxProcessingTimeMs: this.config.group.maxProcessingTimeMs,
      commitIntervalMs: this.config.group.commitIntervalMs,
      onOverdue: (timedOut) => this.overdue(key, timedOut),
    });
    this.batches.add(watch);
    try {
      if (route.batch)
        return await this.batchDispatch.run(payload, route, key, index, watch, generation, undecodable);
      for (; index < messages.length; index++) {
        if (!isRunning() || generation !== this.generation) return;
        const message = messages[index];
        watch.current = message;
        let decision = this.handle(route, partition, key, message, watch, undecodable);
        if (isPromiseLike(decision)) decision = await decision;
        // A rejoin happened meanwhile: the partition may be another member's now; it is redelivered, never resolved.
        // Or the topic was deleted: its offsets are not the topic's of that name any more.
        if (generation !== this.generation || watch.topicDeleted) return;
        if (decision !== RESOLVE) {
          if (decision.action !== 'release') this.pausePartition(payload, route, partition, key, decision);
          return;
        }
        watch.lastResolved = message.offset;
        // kafkajs commits the resolved offsets and rejoins when the batch throws what the heartbeat failed with.
        if (watch.heartbeatError !== undefined) throw watch.heartbeatError;
        // The batch's signal stays aborted: the next fetch goes on with a fresh one.
        if (watch.timedOut) return;
      }
    } finally {
      watch.close();
      this.batches.delete(watch);
      if (watch.timedOut && this.stoppedPartitions.get(key)?.startsWith(watch.timedOut.message))
        this.stoppedPartitions.delete(key);
      // The run of successes is resolved once, at its end: before kafkajs commits (after the batch, or in the catch
      // of what this batch throws), before a paused partition is fetched again, before stop() commits. kafkajs
      // parses and formats the offset as a 64-bit number on every resolve.
      // What a batch of a deleted topic recorded after the deletion (a failure, its dead-letter write) is forgotten.
      if (watch.topicDeleted) this.ledger.topicDeleted(key);
      else if (watch.lastResolved !== undefined && generation === this.generation) {
        resolveOffset(watch.lastResolved);
        this.ledger.setLastResolved(key, watch.lastResolved);
      }
    }
  }

  /**
   * Handles one message and decides: resolve it, retry it later, stop the partition, or release it (shutdown).
   * A handler that returned synchronously is decided synchronously (no promise for the message); otherwise the
   * decision settles with the handler.
   */
  private handle(
    route: GroupRoute,
    partition: number,
    key: string,
    message: KafkaMessage,
    watch: BatchWatch,
    undecodable: Error | undefined,
  ): FailureDecision | Promise<FailureDecision> {
    // Failures are rare: no lookup on the hot path when there are none.
    const failure = this.ledger.hasFailures ? this.ledger.failureAt(key, message.offset) : undefined;
    if (failure?.exhausted) return this.deadLetter(route, partition, message, failure, failure.exhausted);
    // A retry record not due yet: its partition pauses until it is (the others flow meanwhile).
    if (route.isRetryTopic) {
      const waitMs = msUntilDue(message.headers, Date.now());
      if (waitMs > 0) return { action: 'retry', delayMs: waitMs };
    }

    const attempt = route.retryTopics?.attemptOf(route.topic, message) ?? (failure?.attempts ?? 0) + 1;
    const started = this.config.observer ? performance.now() : 0;
    const outcome = undecodable ?? this.dispatch(route, partition, message, attempt, watch.controller);
    if (outcome === undefined) return this.succeeded(route, partition, key, failure, started);
    if (!isPromiseLike(outcome)) return this.failed(route, partition, key, message, watch, attempt, outcome);
    return Promise.resolve(outcome).then((error) =>
      error === undefined
        ? this.succeeded(route, partition, key, failure, started)
        : this.failed(route, partition, key, message, watch, attempt, error),
    );
  }

  private succeeded(
    route: GroupRoute,
    partition: number,
    key: string,
    failure: PartitionFailure | undefined,
    started: number,
  ): FailureDecision {
    if (failure) this.ledger.settled(key);
    this.counts.processed++;
    this.config.observer?.processed(this.groupId, route.topic, partition, performance.now() - started);
    return RESOLVE;
  }

  private failed(
    route: GroupRoute,
    partition: number,
    key: string,
    message: KafkaMessage,
    watch: BatchWatch,
    attempt: number,
    error: unknown,
  ): FailureDecision | Promise<FailureDecision> {
    // A handler that gave up because it ran too long failed by timeout, whatever it threw.
    const outcome = watch.timedOut ?? error;
    const decision = decide(outcome, attempt, this.shutdown.signal.aborted, route.settings);
    const where = `${route.topic}[${partition}]@${message.offset}`;
    const cause = asError(outcome);
    if (decision.action === 'release') {
      this.logger.log(
        `${where} failed during shutdown (${printable(cause.message)}): left uncommitted, redelivered after restart`,
      );
      return decision;
    }

    this.counts.failed++;
    this.config.observer?.failed(this.groupId, route.topic, partition);
    const recorded = this.ledger.failed(key, message.offset, attempt);
    if (decision.action === 'retry') {
      this.logger.warn(
        `${route.handlerName} failed on ${where} (attempt ${attempt} of ${route.settings.retry.attempts}): ${printable(cause.message)}`,
      );
      return decision;
    }
    if (decision.action === 'stop') return this.stopPartition(route, key, where, recorded, cause);
    recorded.exhausted = cause;
    recorded.next = route.retryTopics?.next(attempt, decision.action === 'forward', message, Date.now());
    return this.deadLetter(route, partition, message, recorded, cause);
  }

  /** The message's failure, or a promise of it when the handler did not return synchronously; undefined: success. */
  private dispatch(
    route: GroupRoute,
    partition: number,
    message: KafkaMessage,
    attempt: number,
    abort: AbortController,
  ): unknown {
    const { limits, raw } = route.settings;
    const data = decodePayload(limits, raw, route.topic, partition, message);
    if (data instanceof KafkaNonRetryableError) return data;
    const context = new KafkaGroupContext(route.topic, partition, message, this.groupId, attempt, abort);
    return route.invoke(data, context);
  }

  /**
   * A handler ran past maxProcessingTimeMs and did not give up when its signal was aborted: until it returns, its
   * partition and every partition of the same fetch (kafkajs waits for a whole fetch's batches before the next) get
   * nothing fetched, and with one worker (partitionsConsumedConcurrently 1) every partition of the member, whose
   * batches queue behind it. What the batch handled on its partition is not committed either (resolved when the
   * batch ends); what the other batches finished is (the runner commits on the batch's heartbeat). Stopped, in
   * health and status, until the batch ends; said once, as an error.
   */
  private overdue(key: string, timedOut: KafkaHandlerTimeoutError): void {
    const stillRunning = `${timedOut.message}, and the handler has not given up: it still runs`;
    this.stoppedPartitions.set(key, stillRunning);
    const { partitionsConsumedConcurrently } = this.config.group;
    const held =
      partitionsConsumedConcurrently === 1
        ? 'nothing more of any partition of this member (partitionsConsumedConcurrently is 1)'
        : 'nothing more of this partition, nor of the partitions fetched with it from the same broker (nor of any ' +
          'partition once every one of the partitionsConsumedConcurrently workers waits on such a handler)';
    this.logger.error(
      `${stillRunning}; ${held} is fetched until it returns, nor is anything of this partition from its batch's ` +
        "first record committed (what the other partitions' handlers finished is committed meanwhile)",
    );
  }

  /** Dead letters are off and the retries are exhausted: the partition stops; nothing is skipped. */
  private stopPartition(
    route: GroupRoute,
    key: string,
    where: string,
    failure: PartitionFailure,
    error: Error,
  ): FailureDecision {
    this.stoppedPartitions.set(
      key,
      `dead letters are off and ${where} failed for good after ${failure.attempts} attempt(s): ${printable(error.message)}`,
    );
    this.logger.error(
      `${route.handlerName} failed on ${where} after ${failure.attempts} attempt(s) and dead letters are off: ` +
        `partition stopped until the next rebalance or restart. Last error: ${printable(error.message)}`,
      printableStack(error),
    );
    return STOP;
  }

  /**
   * RESOLVE once the message is in its dead-letter (or retry) topic. A write that is in within INLINE_WRITE_MS
   * lets the batch go on; a slower one leaves DEAD_LETTER: the partition stays paused and the write, started once
   * and running beside the fetch loop, resumes it when the record is in.
   */
  private async deadLetter(
    route: GroupRoute,
    partition: number,
    message: KafkaMessage,
    failure: PartitionFailure,
    error: Error,
  ): Promise<FailureDecision> {
    const where = `${route.topic}[${partition}]@${message.offset}`;
    const key = partitionKey(route.topic, partition);
    let write = failure.deadLetter;
    if (!write) {
      write = failure.deadLetter = this.startDeadLetter(route, partition, message, error, failure.next);
      await write.settledWithin(INLINE_WRITE_MS);
    }
    if (write.state !== 'written') return DEAD_LETTER;
    this.ledger.settled(key);
    this.stoppedPartitions.delete(key);
    if (failure.next && !failure.next.deadLetter) {
      this.logger.warn(
        `${route.handlerName} failed on ${where} (attempt ${failure.attempts} of ${route.retryTopics!.attempts}): ` +
          `${printable(error.message)}; sent to ${write.deadLetterTopic}, due in ${failure.next.delayMs} ms`,
      );
      return RESOLVE;
    }
    this.counts.deadLettered++;
    this.config.observer?.deadLettered(this.groupId, route.topic, partition);
    // The one line of a failed message that carries the stack trace (each attempt logged one line without it).
    this.logger.warn(
      `${route.handlerName} gave up on ${where} after ${failure.attempts} attempt(s) (${error.name}: ${printable(error.message)}); ` +
        `sent to ${route.deadLetterTopic}${write.stub ? ' as a stub record (too large for the topic)' : ''}\n` +
        printableStack(error),
    );
    return RESOLVE;
  }

  /** Starts the write; its outcome stops the partition (reported) or resumes it to resolve the offset. */
  private startDeadLetter(
    route: GroupRoute,
    partition: number,
    message: KafkaMessage,
    error: Error,
    next: RetryDestination | undefined,
  ) {
    const key = partitionKey(route.topic, partition);
    const consumer = this.consumer;
    const source = {
      topic: route.topic,
      partition,
      message,
      groupId: this.groupId,
      error,
      retry: next?.headers,
      toRetryTopic: next !== undefined && !next.deadLetter,
    };
    return this.config.deadLetters.start(
      next?.topic ?? route.deadLetterTopic,
      source,
      route.settings.deadLetter,
      (write) => {
        if (this.ledger.failure(key)?.deadLetter !== write) return;
        if (write.state === 'stopped') this.stoppedPartitions.set(key, write.reason!);
        if (write.state !== 'written' || !consumer || consumer !== this.consumer || this.state !== 'joined')
          return;
        try {
          this.release(consumer, route.topic, partition);
        } catch (resumeError) {
          // A consumer in kafkajs's crash path: the join that follows starts every partition afresh.
          this.logger.warn(`Could not resume ${key}: ${asError(resumeError).message}`);
        }
      },
    );
  }

  /**
   * Pauses one partition and, unless it stopped, schedules its resumption after the decision's delay: never a
   * sleep inside the batch (it would stall the fetch). The next fetch restarts at the first unresolved offset.
   */
  private pausePartition(
    payload: EachBatchPayload,
    route: GroupRoute,
    partition: number,
    key: string,
    decision: FailureDecision,
  ): void {
    payload.pause();
    this.held.add(key);
    if (decision === DEAD_LETTER) {
      const failure = this.ledger.failure(key);
      // Not the batch's resolveOffset: kafkajs binds it to this run's consumer group, which a crash restart replaces.
      if (failure)
        failure.resolveOffset = (offset) =>
          this.eachBatchFn !== undefined &&
          resolveInCurrentGroup(this.eachBatchFn, route.topic, partition, offset);
    }
    // A stopped partition waits for a rebalance; one waiting for its dead-letter write is resumed by the write.
    if (decision.action !== 'retry' || this.shutdown.signal.aborted) return;
    const failure = this.ledger.failure(key);
    if (failure && !failure.exhausted) failure.retryAt = Date.now() + decision.delayMs;
    this.scheduleRelease(key, route.topic, partition, decision.delayMs);
  }

  private scheduleRelease(key: string, topic: string, partition: number, delayMs: number): void {
    const consumer = this.consumer;
    this.resumeTimers.schedule(key, delayMs, () => {
      if (consumer && consumer === this.consumer && this.state === 'joined')
        this.release(consumer, topic, partition);
    });
  }

  /**
   * After a join, a partition this member kept while it waited out a retry backoff waits out the rest of it, as
   * Spring's container pauses again the partitions it keeps; otherwise every rebalance would cut backoffs short
   * (a rebalance storm during an outage would spend the attempts in seconds).
   */
  private holdRetries(consumer: Consumer): void {
    for (const { key, delayMs } of this.ledger.waitingRetries(Date.now())) {
      const at = key.lastIndexOf(':');
      const topic = key.slice(0, at);
      const partition = Number(key.slice(at + 1));
      this.tryOn(consumer, 'pause', [{ topic, partitions: [partition] }]);
      this.held.add(key);
      this.scheduleRelease(key, topic, partition, delayMs);
    }
  }

  /**
   * Paused partitions survive a rebalance in kafkajs: after a join (or crash) start every partition afresh. The
   * attempt counts stay (see PartitionLedger); a retained partition waiting out a backoff pauses again (holdRetries).
   */
  private clearPartitionState(consumer: Consumer): void {
    this.resumeTimers.clear();
    this.stoppedPartitions.clear();
    this.held.clear();
    if (this.state !== 'joined') return;
    try {
      const paused = consumer.paused();
      if (paused.length > 0) consumer.resume(paused);
    } catch (error) {
      // The crash path: kafkajs is rebuilding its consumer group, whose next join starts unpaused.
      this.logger.debug(`Nothing to resume (${asError(error).message})`);
    }
  }
}

/** The group's main topics and its retry topics (these are read from their start: see join). */
function partitionTopics(routes: ReadonlyMap<string, GroupRoute>): [string[], string[]] {
  const main: string[] = [];
  const retry: string[] = [];
  for (const route of routes.values()) (route.isRetryTopic ? retry : main).push(route.topic);
  return [main, retry];
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null | undefined)?.then === 'function';
}
