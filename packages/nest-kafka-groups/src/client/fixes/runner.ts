import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';
import { fetchedBeforeDeletion } from '../topic-deletion.js';
import { isCoordinatorLost } from './consumer-group.js';
import { CoordinatorOutage } from './coordinator-outage.js';

type RunnerClass = new (options: any) => any;

/**
 * Replaces kafkajs 2.2.4's consumer/runner.js by a subclass of the released Runner. Upstream commits every resolved
 * offset after each batch (`await this.autoCommitOffsets()` in handleBatch), whatever `autoCommitInterval` and
 * `autoCommitThreshold` say, and the fetcher waits for that commit before fetching again: each fetch-process cycle
 * costs one OffsetCommit round trip to the group coordinator. Here a batch that ends while the consumer runs commits
 * only when the interval or threshold is reached (`autoCommitOffsetsIfNecessary`), and without holding up the next
 * fetch (one commit at a time; the coordinator's answer is a round trip that a Kafka 4 coordinator also delays to
 * batch its log writes). The offsets resolved since the last commit are committed:
 * - when the interval has passed and a fetch brings nothing new (empty batches, or no batch at all), so a quiet
 *   topic keeps no stale committed offset;
 * - before the consumer leaves the group on stop() (after the in-flight batches ended), and when the last batch
 *   ends after stop() began;
 * - before a rejoin: the released heartbeat commits everything on a rebalance error, and the batches of that fetch
 *   still running commit when they end; on a handler error (released behaviour, unchanged);
 * - before a crash is handled (kafkajs disconnects and may restart the consumer, which then reads the committed
 *   offsets).
 * So nothing is committed before it was resolved, and processed-but-uncommitted offsets are redelivered only when
 * the process dies without leaving.
 */
/**
 * Work a consumer's runner awaits before it rejoins the group, keyed by the `eachBatch` function given to `run()`
 * (kafkajs passes the runner nothing else of the caller's). It resolves true when it resolved offsets that must be
 * committed before the partitions are given up: the runner then commits them first.
 */
const beforeRejoinHooks = new WeakMap<object, () => Promise<boolean>>();

/**
 * Registers `hook` for the runner of the consumer run with this `eachBatch`: awaited before every rejoin (not the
 * first join), as Java's consumer runs `onPartitionsRevoked` before it rejoins.
 */
export function beforeRejoin(eachBatch: object, hook: () => Promise<boolean>): void {
  beforeRejoinHooks.set(eachBatch, hook);
}

/**
 * A consumer's rebalance listener, keyed like the `beforeRejoin` hooks. Each join the member reported through
 * `joined` is followed by one `givingUp`, awaited before the partitions go: before a rejoin (after the
 * `beforeRejoin` work), before the member leaves the group at stop(), and when its consumer crashed; each time
 * after the batches ended and the resolved offsets were committed.
 */
export interface RebalanceHooks {
  /** After every join, once the assignment is known, before the first fetch of it. */
  joined(): Promise<void>;
  /**
   * The member gives its partitions up. `committed`: every offset resolved was committed and the member was still
   * in the group (no heartbeat or commit was answered as from a member the group no longer counts).
   */
  givingUp(committed: boolean): Promise<void>;
}

const rebalanceHooks = new WeakMap<object, RebalanceHooks>();

/** Registers `hooks` for the runners of the consumer run with this `eachBatch` (each restart builds a new one). */
export function onRebalance(eachBatch: object, hooks: RebalanceHooks): void {
  rebalanceHooks.set(eachBatch, hooks);
}

/** What the coordinator answers a member it no longer counts in the group (Java resets its generation on these). */
const MEMBERSHIP_LOST = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

export function isMembershipLost(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' && MEMBERSHIP_LOST.has(type);
}

/**
 * The group coordinator answered that it cannot serve the group now (a broker it replicates its log to died and has
 * not been dropped from the replicas it waits for, or it is loading the group) or did not answer in time: the Java
 * consumer keeps fetching and sends the heartbeat or commit again.
 */
const COORDINATOR_UNAVAILABLE = new Set([
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'GROUP_LOAD_IN_PROGRESS',
  'REQUEST_TIMED_OUT',
]);

/** As the Java consumer waits before it sends a failed heartbeat or commit again (`retry.backoff.ms`). */
const HEARTBEAT_RETRY_BACKOFF_MS = 100;

export function isCoordinatorUnavailable(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' && COORDINATOR_UNAVAILABLE.has(type);
}

/**
 * Whether a failed heartbeat leaves the member fetching (the next heartbeat tries again) rather than being thrown
 * to kafkajs, which stops every fetcher and retries (each failure counts against its retries, then the consumer
 * crashes and rejoins as a new member):
 * - while the coordinator is unavailable (it cannot write its log, or is loading) and the last heartbeat it
 *   answered is less than half the session timeout ago. No coordinator, a newly elected one included, evicts the
 *   member before a whole session timeout after that answer; the other half is the margin for a busy event loop,
 *   so the member stops before its partitions can have gone to another member;
 * - while the coordinator is unknown (it died or moved, `coordinatorUnknown`: the consumer group looks it up again
 *   before the next heartbeat) and the session has not lapsed: from then on the member hands no batch to its
 *   handlers (`sessionLapsed`), so fetching on until the new coordinator answers takes nothing from another member.
 */
export function keepsFetchingAfterHeartbeat(
  error: unknown,
  sinceAnsweredMs: number,
  sessionTimeoutMs: number,
  coordinatorUnknown = false,
): boolean {
  if (coordinatorUnknown) return !sessionLapsed(sinceAnsweredMs, sessionTimeoutMs);
  return isCoordinatorUnavailable(error) && sinceAnsweredMs < sessionTimeoutMs / 2;
}

/**
 * Whether the member has had no answer from its coordinator (a heartbeat, or the join) for a whole session
 * timeout: the coordinator may have evicted it and given its partitions to another member, so it hands no fetched
 * batch to its handlers until a heartbeat is answered again or it has rejoined (librdkafka's consumer drops its
 * assignment at that point too; Java's marks the coordinator unknown and goes on).
 */
export function sessionLapsed(sinceAnsweredMs: number, sessionTimeoutMs: number): boolean {
  return sinceAnsweredMs >= sessionTimeoutMs;
}

/**
 * The consumer group of the latest Runner built for each `eachBatch`: kafkajs builds a new group and Runner, with
 * the same `eachBatch`, every time it restarts a crashed consumer, and a batch's `resolveOffset` stays bound to the
 * group of its own run.
 */
const currentGroups = new WeakMap<object, { offsetManager: unknown; resolveOffset(offset: object): void }>();

/**
 * Resolves `offset` in the consumer group kafkajs runs now for the consumer run with this `eachBatch` (outside a
 * batch: a dead-letter write that ended after the batch). False while that group has not joined yet.
 */
export function resolveInCurrentGroup(
  eachBatch: object,
  topic: string,
  partition: number,
  offset: string,
): boolean {
  const group = currentGroups.get(eachBatch);
  if (!group?.offsetManager) return false;
  group.resolveOffset({ topic, partition, offset });
  return true;
}

/** The latest Runner built for each `eachBatch` (as `currentGroups`): health reads its coordinator outage. */
const currentRunners = new WeakMap<
  object,
  { coordinatorOutage: CoordinatorOutage; abandonBatches(): void }
>();

/**
 * The stop of the consumer run with this `eachBatch` gives up waiting for its batches still running (a handler that
 * outlasted `shutdownTimeoutMs`): it commits what was resolved, leaves the group and lets kafkajs disconnect, and a
 * batch that ends later commits nothing (the consumer is gone).
 */
export function abandonRunningBatches(eachBatch: object): void {
  currentRunners.get(eachBatch)?.abandonBatches();
}

/**
 * Why the coordinator keeps the consumer run with this `eachBatch` from working normally (heartbeats unanswered or
 * commits failing for a session timeout), for health; undefined when it does not.
 */
export function coordinatorProblem(eachBatch: object): string | undefined {
  return currentRunners.get(eachBatch)?.coordinatorOutage.problem();
}

/** kafkajs's retrier (src/retry): runs `fn` again with backoff while it throws a retriable error, `retries` times. */
export type Retrier = <T>(
  fn: (bail: (error: unknown) => void, retryCount: number, retryTime: number) => Promise<T>,
) => Promise<T>;

/** The attempt failed after progress was made in it: the failure starts a new run of retries. */
const RESTART = Symbol('restart');

/**
 * kafkajs's retrier whose count restarts when an attempt made progress before it failed (`progress()` moved during
 * it), as the Java consumer's backoff restarts after a success: only failures in a row, with no progress between
 * them, use up `retries`. Such a failure is handed to a new kafkajs retrier as its first failure, so the backoff
 * before the next attempt, the errors thrown when the retries run out (`KafkaJSNumberOfRetriesExceeded`) and those
 * that are not retriable (`KafkaJSNonRetriableError`) are kafkajs's own.
 */
export function retryCountingFailuresInARow(
  createRetry: (options: object) => Retrier,
  options: object,
  progress: () => number,
): Retrier {
  return async <T>(
    fn: (bail: (error: unknown) => void, retryCount: number, retryTime: number) => Promise<T>,
  ) => {
    // A loop, not a call per restart: a consumer restarts its count for as long as it lives, and each nested call
    // would keep its promise pending until the consumer stops.
    let pending: { error: unknown } | undefined;
    for (;;) {
      const result = await createRetry(options)(async (bail, retryCount, retryTime) => {
        if (pending !== undefined) {
          const { error } = pending;
          pending = undefined;
          throw error;
        }
        const before = progress();
        try {
          return await fn(bail, retryCount, retryTime);
        } catch (error) {
          // A first failure counts as the first one anyway; a later one after progress starts over.
          if (retryCount > 0 && progress() !== before) return { [RESTART]: error };
          throw error;
        }
      });
      if (typeof result !== 'object' || result === null || !(RESTART in result)) return result as T;
      pending = { error: (result as { [RESTART]: unknown })[RESTART] };
    }
  };
}

export const runnerFix: CarriedFix = {
  module: 'src/consumer/runner.js',
  sha256: 'fad3247df2e3ba483b94e014e5c5916fd72d7bdfc3b3dfccc5232b60da18306d',
  create: (require: KafkajsRequire, released: () => any) => {
    const {
      events: { START_BATCH_PROCESS, END_BATCH_PROCESS },
    } = require('./instrumentationEvents');
    const { isRebalancing } = require('../errors');
    const createRetry = require('../retry') as (options: object) => Retrier;
    return createRunner(released() as RunnerClass, {
      START_BATCH_PROCESS,
      END_BATCH_PROCESS,
      isRebalancing,
      createRetry,
    });
  },
};

interface RunnerInternals {
  START_BATCH_PROCESS: string;
  END_BATCH_PROCESS: string;
  isRebalancing: (error: unknown) => boolean;
  createRetry: (options: object) => Retrier;
}

export function createRunner(Released: RunnerClass, internals: RunnerInternals): RunnerClass {
  const { START_BATCH_PROCESS, END_BATCH_PROCESS, isRebalancing, createRetry } = internals;

  return class Runner extends Released {
    /** The generation in which a heartbeat reported a rebalance: the batches still running commit when they end. */
    rebalancingGeneration: number | undefined;
    /** The interval's commit while it is under way: the fetch loop goes on without waiting for it. */
    commitInFlight: Promise<void> | undefined;
    /**
     * What that commit failed with and in which generation, thrown where kafkajs would have met it: at the next
     * batch's commit check of the same generation.
     */
    commitFailure: { error: unknown; generation: number } | undefined;
    /** The heartbeat under way: no fetcher waits for it beyond a turn of the event loop. */
    heartbeatInFlight: Promise<void> | undefined;
    /** What a heartbeat failed with and in which generation, thrown from the next heartbeat call. */
    heartbeatFailure: { error: unknown; generation: number } | undefined;
    /** No heartbeat before this (epoch ms) after the coordinator answered one "not available". */
    heartbeatRetryAt = 0;
    /** The generation in which a heartbeat or commit was answered as from a member no longer in the group. */
    membershipLostIn: number | undefined;
    readonly rebalance: RebalanceHooks | undefined;
    /** Fetches that reached their broker and were answered: the fetch loop's retry count restarts after one. */
    fetchesAnswered = 0;
    /**
     * Brokers whose last fetch failed. While there are any, only their answers count as progress: a fetch error stops
     * every fetcher and waits for their fetches in flight, so a healthy broker answers in every attempt and would
     * otherwise restart the count for a broker that fails every time (retried for ever instead of crashing).
     */
    readonly failingFetches = new Set<number>();
    /** The fetch loop's retrier (commits keep the released one, one retrier per commit). */
    readonly fetchLoopRetrier: Retrier;
    /** Heartbeats and commits the coordinator has not served: logged and reported to health. */
    readonly coordinatorOutage: CoordinatorOutage;
    /** No interval commit before this (epoch ms) after one failed with the coordinator lost or unavailable. */
    commitRetryAt = 0;
    /** Set by abandonBatches(): stop() no longer waits for the batches still running. */
    batchesAbandoned = false;
    /** Resolves when the batches are abandoned. */
    readonly abandoned: Promise<void>;
    private abandon!: () => void;

    constructor(options: any) {
      super(options);
      this.abandoned = new Promise<void>((resolve) => (this.abandon = resolve));
      this.fetchLoopRetrier = retryCountingFailuresInARow(
        createRetry,
        { ...options.retry },
        () => this.fetchesAnswered,
      );
      const group = this.consumerGroup;
      this.coordinatorOutage = new CoordinatorOutage(() => ({
        groupId: group.groupId,
        memberId: group.memberId,
        coordinator: group.coordinator
          ? `broker ${group.coordinator.nodeId} at ${group.coordinator.brokerAddress}`
          : 'not found yet',
        sessionTimeout: group.sessionTimeout,
      }));
      if (options.eachBatch) {
        currentGroups.set(options.eachBatch, this.consumerGroup);
        currentRunners.set(options.eachBatch, this);
      }
      const hook = beforeRejoinHooks.get(options.eachBatch);
      const rebalance = (this.rebalance = rebalanceHooks.get(options.eachBatch));
      if (hook || rebalance) {
        const consumerGroup = this.consumerGroup;
        const joinAndSync = consumerGroup.joinAndSync.bind(consumerGroup) as () => Promise<unknown>;
        consumerGroup.joinAndSync = async () => {
          if (consumerGroup.generationId != null) {
            const resolved = hook !== undefined && (await hook());
            if (rebalance) {
              const committed = await this.commitBeforeLeaving('rejoin');
              await this.keepingSession(() => rebalance.givingUp(committed));
            } else if (resolved) await this.commitBeforeLeaving('rejoin');
          }
          await joinAndSync();
          if (rebalance) await this.keepingSession(() => rebalance.joined());
        };
      }
      const onCrash = this.onCrash as (error: Error) => unknown;
      this.onCrash = async (error: Error) => {
        // Called while a started consumer crashes (running still true); a start that failed resolved nothing.
        if (this.running) {
          const committed = await this.commitBeforeLeaving('crash');
          await rebalance?.givingUp(committed);
          // Released kafkajs leaves the group here, through disconnect() -> stop() while running is still true;
          // after the awaits above the runner already counts as stopped, so leave as stop() would, else the group
          // holds this member's partitions (and the restarted consumer's join) until the session timeout.
          await this.leaveAfterCrash();
        }
        return onCrash(error);
      };
    }

    /**
     * Runs a rebalance listener's call while heartbeating every `heartbeatInterval`, as the Java consumer's heartbeat
     * thread does while its listener runs: nothing else heartbeats meanwhile, and a listener slower than the session
     * timeout would get the member evicted (slow on every join, rejoining for ever). The answers are left to the
     * fetch loop's next heartbeat, which meets a rebalance or an eviction again. For at most `rebalanceTimeout`
     * (Java's bound is `max.poll.interval.ms`, which it sends as the rebalance timeout): a listener that hangs then
     * lets the session end, so the group gives the member's partitions to the others.
     */
    async keepingSession(call: () => Promise<void>): Promise<void> {
      const until = Date.now() + this.consumerGroup.rebalanceTimeout;
      const beat = () => {
        if (Date.now() < until) {
          (this.consumerGroup.heartbeat({ interval: this.heartbeatInterval }) as Promise<void>).catch(
            () => undefined,
          );
          return;
        }
        clearInterval(timer);
        this.logger.warn(
          'A rebalance listener ran past the rebalance timeout: heartbeats stop, the group evicts the member',
          {
            groupId: this.consumerGroup.groupId,
            memberId: this.consumerGroup.memberId,
            rebalanceTimeout: this.consumerGroup.rebalanceTimeout,
          },
        );
      };
      const timer = setInterval(beat, this.heartbeatInterval);
      try {
        await call();
      } finally {
        clearInterval(timer);
      }
    }

    noteMembership(error: unknown, generation: number): void {
      if (isMembershipLost(error)) this.membershipLostIn = generation;
    }

    /**
     * Sends the heartbeat that is due (kafkajs sends one per `heartbeatInterval` whatever the calls) and waits for
     * it only until the next turn of the event loop: a coordinator that answers late (it waits for a dead broker's
     * replica before it answers) would otherwise hold up every fetcher whose batch ends meanwhile. A failure is
     * thrown from the call that sees it, in the generation it happened in, as kafkajs would have thrown it (a
     * rebalance error commits first); a coordinator that is unavailable only makes a call after the retry backoff
     * send again (not every batch end: each would send one).
     */
    async heartbeat(): Promise<void> {
      this.commitOnHeartbeat();
      if (this.heartbeatInFlight === undefined && Date.now() >= this.heartbeatRetryAt) {
        const generation = this.consumerGroup.generationId;
        const beat = (
          this.consumerGroup.heartbeat({ interval: this.heartbeatInterval }) as Promise<void>
        ).then(
          () => {
            this.heartbeatInFlight = undefined;
            this.coordinatorOutage.heartbeatAnswered();
          },
          (error: unknown) => {
            this.heartbeatInFlight = undefined;
            const { sessionTimeout, coordinatorUnknown } = this.consumerGroup;
            if (coordinatorUnknown || isCoordinatorLost(error) || isCoordinatorUnavailable(error))
              this.coordinatorOutage.heartbeatFailed(error, Date.now() - this.sinceAnswered());
            if (
              keepsFetchingAfterHeartbeat(error, this.sinceAnswered(), sessionTimeout, coordinatorUnknown)
            ) {
              this.heartbeatRetryAt = Date.now() + HEARTBEAT_RETRY_BACKOFF_MS;
              this.logger.debug('Group coordinator unavailable, heartbeat sent again on the next call', {
                groupId: this.consumerGroup.groupId,
                memberId: this.consumerGroup.memberId,
                error: (error as Error).message,
              });
            } else {
              this.noteMembership(error, generation);
              this.heartbeatFailure = { error, generation };
            }
          },
        );
        this.heartbeatInFlight = beat;
        await Promise.race([beat, nextTurn()]);
      }
      const failure = this.heartbeatFailure;
      if (failure === undefined) return;
      this.heartbeatFailure = undefined;
      if (failure.generation !== this.consumerGroup.generationId) return;
      if (isRebalancing(failure.error)) {
        this.rebalancingGeneration = failure.generation;
        await this.autoCommitOffsets();
      }
      throw failure.error;
    }

    /**
     * Best effort: a failed commit leaves the offsets to be redelivered, which at-least-once allows. True when every
     * resolved offset is committed and the member was still in the group.
     */
    async commitBeforeLeaving(reason: string): Promise<boolean> {
      const generation = this.consumerGroup.generationId;
      try {
        await this.autoCommitOffsets();
        return this.consumerGroup.memberId != null && this.membershipLostIn !== generation;
      } catch (error) {
        this.logger.warn(
          `Could not commit the resolved offsets before the ${reason}; they will be redelivered`,
          {
            groupId: this.consumerGroup.groupId,
            memberId: this.consumerGroup.memberId,
            error: (error as Error).message,
          },
        );
        return false;
      }
    }

    /**
     * Starts the commit that the interval or threshold asks for and returns without waiting for the coordinator's
     * answer, one commit at a time (the offsets are taken when it starts; what is resolved meanwhile goes with the
     * next), so the fetcher fetches again at once. A failure is thrown from the next call, in the batch or fetch
     * that kafkajs would have thrown it from. An interval of 0 asks for a commit after every batch before the next
     * fetch: that one is awaited, as released.
     */
    autoCommitOffsetsIfNecessary(): Promise<void> | undefined {
      if (this.consumerGroup.autoCommitInterval === 0) return this.commitAfterBatch();
      if (this.commitFailure !== undefined) {
        const { error, generation } = this.commitFailure;
        this.commitFailure = undefined;
        // After a rejoin the failure is old news (whichever error made the consumer rejoin): thrown now, it would
        // make the new generation rejoin again.
        if (generation === this.consumerGroup.generationId) return Promise.reject(error);
      }
      this.startCommitIfDue();
      return undefined;
    }

    /**
     * Starts the interval's commit when it is due and none is under way; its failure is kept for the next batch's
     * commit check (see autoCommitOffsetsIfNecessary).
     */
    startCommitIfDue(): void {
      if (this.commitInFlight !== undefined || !this.commitMaybeDue()) return;
      const commit = super.autoCommitOffsetsIfNecessary() as Promise<void> | undefined;
      if (commit === undefined) return;
      const generation = this.consumerGroup.generationId;
      this.commitInFlight = commit.then(
        () => {
          this.commitInFlight = undefined;
          this.coordinatorOutage.commitSucceeded();
        },
        (error: unknown) => {
          this.commitInFlight = undefined;
          // Resolved offsets stay uncommitted until a commit succeeds: the next interval's commit carries them
          // (to the coordinator looked up again, when this one died or moved).
          this.noteMembership(error, generation);
          if (!isCoordinatorUnavailable(error) && !this.consumerGroup.coordinatorUnknown) {
            this.commitFailure = { error, generation };
            return;
          }
          // Not at the next batch end (every one would send a commit and a coordinator lookup): after the Java
          // consumer's retry backoff. Flat, so the first commit once the coordinator answers is not held up: what
          // it has not committed when the member rejoins is handled again.
          this.coordinatorOutage.commitFailed(error);
          this.commitRetryAt = Date.now() + HEARTBEAT_RETRY_BACKOFF_MS;
        },
      );
    }

    /**
     * A batch that runs long heartbeats through here (the member's batch timer, one per running batch), and nothing
     * else ends a batch or fetches while it runs when the other batches of its fetch have ended: their resolved
     * offsets would wait for it, and a kill meanwhile would redeliver them. So every heartbeat call also starts the
     * interval's commit when it is due, as a batch end does (at a batch end or an idle fetch, where the commit check
     * follows or came just before, it finds nothing more to do). Not with a commit failure kept for a batch end to
     * throw (it makes kafkajs rejoin, and another commit in the same generation would meet it again), nor after
     * every batch (that commit is awaited at the batch end), nor with the session lapsed or the batches abandoned
     * (the member may no longer own the partitions).
     */
    commitOnHeartbeat(): void {
      if (
        this.commitFailure !== undefined ||
        this.batchesAbandoned ||
        this.consumerGroup.autoCommitInterval === 0 ||
        sessionLapsed(this.sinceAnswered(), this.consumerGroup.sessionTimeout)
      )
        return;
      this.startCommitIfDue();
    }

    /**
     * The commit after every batch (an interval of 0), awaited and its failure thrown as released; a coordinator lost
     * or unavailable is reported to the outage tracking as an interval commit's is, or nothing would say it.
     */
    async commitAfterBatch(): Promise<void> {
      try {
        await super.autoCommitOffsetsIfNecessary();
      } catch (error) {
        if (isCoordinatorUnavailable(error) || this.consumerGroup.coordinatorUnknown)
          this.coordinatorOutage.commitFailed(error);
        throw error;
      }
      this.coordinatorOutage.commitSucceeded();
    }

    /**
     * False while a failed interval commit's retry backoff runs, and when the offset manager's own test (its
     * commitOffsetsIfNecessary: the interval passed, or the threshold reached) would not commit: every batch ends
     * with this check, and the released one goes through two async layers to find that out. With a threshold the
     * released test decides (it counts every resolved offset).
     */
    commitMaybeDue(): boolean {
      if (this.commitRetryAt > Date.now()) return false;
      const manager = this.consumerGroup.offsetManager;
      if (!this.autoCommit || manager == null || manager.autoCommitThreshold != null) return true;
      return manager.autoCommitInterval == null
        ? false
        : Date.now() >= manager.lastCommit + manager.autoCommitInterval;
    }

    /** Every resolved offset, after the commit under way (whose failure this commit supersedes: it retries them). */
    async autoCommitOffsets(): Promise<void> {
      await this.commitInFlight;
      this.commitFailure = undefined;
      const generation = this.consumerGroup.generationId;
      try {
        await super.autoCommitOffsets();
      } catch (error) {
        this.noteMembership(error, generation);
        throw error;
      }
    }

    /**
     * Whether an answer of this broker counts as progress: always when no broker's fetches are failing, else only from
     * a failing one (no longer failing then). A failing broker that no longer leads anything is forgotten.
     */
    answeredAfterFailure(nodeId: number): boolean {
      if (this.failingFetches.size === 0) return true;
      if (this.failingFetches.delete(nodeId)) return true;
      const current = new Set((this.consumerGroup.getNodeIds() as Array<number | string>).map(Number));
      for (const failing of this.failingFetches)
        if (!current.has(failing)) this.failingFetches.delete(failing);
      return this.failingFetches.size === 0;
    }

    /**
     * The released loop runs every fetcher inside one call of the runner's retrier, which lives as long as the
     * consumer: each error it retries (a leader change, a timeout) counts against `retry.retries` for good, so a
     * consumer that meets one now and then crashes after `retries` of them, days apart, and the group rebalances.
     * Here that call gets the fetch loop's retrier, whose count restarts once a fetch was answered. The released
     * method calls `this.retrier` synchronously, once, at its start.
     */
    scheduleFetchManager(): void {
      const perCommit = this.retrier;
      this.retrier = this.fetchLoopRetrier;
      try {
        super.scheduleFetchManager();
      } finally {
        this.retrier = perCommit;
      }
    }

    async fetch(nodeId: number): Promise<unknown[]> {
      let batches: unknown[];
      try {
        batches = (await super.fetch(nodeId)) as unknown[];
      } catch (error) {
        if (this.running) this.failingFetches.add(nodeId);
        throw error;
      }
      // Not an unreachable broker's empty answer (the consumer group's fix waits, refreshes and returns nothing).
      if (
        this.running &&
        !this.consumerGroup.unreachableFetches?.has(String(nodeId)) &&
        this.answeredAfterFailure(nodeId)
      )
        this.fetchesAnswered++;
      if (!this.running) return batches;
      if (batches.length === 0) {
        await this.autoCommitOffsetsIfNecessary();
        return batches;
      }
      return this.withoutEmptyBatches(batches);
    }

    /**
     * A fetch returns every partition asked for, and at a low rate most of them have nothing new. Released, each
     * such batch goes through the worker queue and a handleBatch of its own (a promise each, its fetcher
     * assignment, the commit check and the heartbeat check) only to do nothing. Here they end at the fetch: the
     * commit and heartbeat checks that their handleBatch made run once for all of them, and only the batches
     * with records, or emptied by filtering (whose offset moves on), go to the workers. While the session has
     * lapsed every batch goes on as released (each empty one heartbeats and waits before the next fetch).
     */
    async withoutEmptyBatches(batches: unknown[]): Promise<unknown[]> {
      if (sessionLapsed(this.sinceAnswered(), this.consumerGroup.sessionTimeout)) return batches;
      const handled = batches.filter((batch: any) => !batch.isEmpty() || batch.isEmptyDueToFiltering());
      if (handled.length === batches.length) return batches;
      const commit = this.autoCommitOffsetsIfNecessary();
      if (commit !== undefined) await commit;
      const beat = this.heartbeatIfDue();
      if (beat !== undefined) await beat;
      return handled;
    }

    async stop(): Promise<void> {
      if (!this.running) return;
      this.logger.debug('stop consumer group', {
        groupId: this.consumerGroup.groupId,
        memberId: this.consumerGroup.memberId,
      });
      this.running = false;
      try {
        await Promise.race([this.batchesEnded(), this.abandoned]);
        const committed = await this.commitBeforeLeaving('leave');
        await this.rebalance?.givingUp(committed);
        await this.consumerGroup.leave();
      } catch {
        // As released: stopping never throws; the group evicts a member that did not leave.
      }
    }

    /** The fetchers stopped and the batch being handled, if any, ended. */
    private async batchesEnded(): Promise<void> {
      await this.fetchManager.stop();
      await this.waitForConsumer();
    }

    abandonBatches(): void {
      this.batchesAbandoned = true;
      this.abandon();
    }

    /** stop()'s steps after the commit, for a crash that reached onCrash once the runner stopped running. */
    private async leaveAfterCrash(): Promise<void> {
      try {
        await this.fetchManager.stop();
        await this.waitForConsumer();
        await this.consumerGroup.leave();
      } catch {
        // As stop(): the group evicts a member that did not leave.
      }
    }

    /** The released handleBatch, with the commit after the batch bounded by autoCommitInterval/Threshold. */
    async handleBatch(batch: any): Promise<void> {
      if (!this.running) {
        this.logger.debug('consumer not running, exiting', {
          groupId: this.consumerGroup.groupId,
          memberId: this.consumerGroup.memberId,
        });
        return;
      }

      if (sessionLapsed(this.sinceAnswered(), this.consumerGroup.sessionTimeout)) {
        await this.holdBack(batch);
        return;
      }

      const startBatchProcess = Date.now();
      // The batch events' payload takes a few 64-bit offset computations: built only for a listener (kafkajs's
      // emitter drops an event nobody listens to), and never for an empty batch, which emits none.
      const payload =
        batch.isEmpty() && !batch.isEmptyDueToFiltering() ? undefined : this.batchEventPayload(batch);

      if (batch.isEmptyDueToFiltering()) {
        if (payload) this.instrumentationEmitter.emit(START_BATCH_PROCESS, payload);
        // Not the offset of a topic deleted since the fetch began: it would move the topic created again past it.
        if (!fetchedBeforeDeletion(batch))
          this.consumerGroup.resolveOffset({
            topic: batch.topic,
            partition: batch.partition,
            offset: batch.lastOffset(),
          });
        await this.autoCommitOffsetsIfNecessary();
        if (payload)
          this.instrumentationEmitter.emit(END_BATCH_PROCESS, {
            ...payload,
            duration: Date.now() - startBatchProcess,
          });
        const beat = this.heartbeatIfDue();
        if (beat !== undefined) await beat;
        return;
      }

      if (batch.isEmpty()) {
        // A fetch with nothing new still returns each partition: the interval's commit of earlier batches is due here.
        const commit = this.autoCommitOffsetsIfNecessary();
        if (commit !== undefined) await commit;
        const beat = this.heartbeatIfDue();
        if (beat !== undefined) await beat;
        return;
      }

      if (payload) this.instrumentationEmitter.emit(START_BATCH_PROCESS, payload);

      if (this.eachMessage) {
        await this.processEachMessage(batch);
      } else if (this.eachBatch) {
        await this.processEachBatch(batch);
      }

      if (payload)
        this.instrumentationEmitter.emit(END_BATCH_PROCESS, {
          ...payload,
          duration: Date.now() - startBatchProcess,
        });

      // An abandoned batch that ended after its stop: the group was left and the client disconnected.
      if (this.batchesAbandoned) return;
      // Stopping or rejoining: commit what this batch resolved now, the partitions are about to be given up.
      if (this.running && this.rebalancingGeneration !== this.consumerGroup.generationId) {
        const commit = this.autoCommitOffsetsIfNecessary();
        if (commit !== undefined) await commit;
      } else {
        await this.autoCommitOffsets();
      }
      const beat = this.heartbeatIfDue();
      if (beat !== undefined) await beat;
    }

    /** Time since the coordinator last answered the member: a heartbeat, or the join (the consumer group's fix). */
    sinceAnswered(): number {
      return Date.now() - Math.max(this.consumerGroup.lastRequest, this.consumerGroup.joinedAt ?? 0);
    }

    /**
     * A batch fetched while the member's session has lapsed: not handled, nothing resolved, so the next fetch
     * returns it again. The heartbeat goes on (looking the coordinator up first when it is unknown): its answer
     * lets the member go on in its generation, or its error makes kafkajs rejoin. A short wait keeps the fetcher
     * from fetching the same records again at once.
     */
    async holdBack(batch: any): Promise<void> {
      if (!batch.isEmpty()) {
        this.logger.debug('No heartbeat answered for the session timeout, batch not handed to the handler', {
          groupId: this.consumerGroup.groupId,
          memberId: this.consumerGroup.memberId,
          topic: batch.topic,
          partition: batch.partition,
          firstOffset: batch.firstOffset(),
        });
      }
      await this.heartbeat();
      await sleep(HEARTBEAT_RETRY_BACKOFF_MS);
    }

    /** START_BATCH_PROCESS's payload (END_BATCH_PROCESS adds the duration), or undefined when neither is listened to. */
    batchEventPayload(batch: any): object | undefined {
      const listeners = this.instrumentationEmitter.emitter as
        { listenerCount(event: string): number } | undefined;
      if (
        listeners !== undefined &&
        listeners.listenerCount(START_BATCH_PROCESS) + listeners.listenerCount(END_BATCH_PROCESS) === 0
      )
        return undefined;
      return {
        topic: batch.topic,
        partition: batch.partition,
        highWatermark: batch.highWatermark,
        offsetLag: batch.offsetLag(),
        offsetLagLow: batch.offsetLagLow(),
        batchSize: batch.messages.length,
        firstOffset: batch.firstOffset(),
        lastOffset: batch.lastOffset(),
      };
    }

    /**
     * The heartbeat after a batch. Every batch ends with one, empty batches included, and nearly all of them long
     * before it is due: the heartbeat's async layers (a few promises a call) run only once the consumer
     * group's own test (`now >= lastRequest + interval`, in its shared heartbeat) would pass.
     */
    heartbeatIfDue(): Promise<void> | undefined {
      if (Date.now() < this.consumerGroup.lastRequest + this.heartbeatInterval) return undefined;
      return this.heartbeat();
    }
  };
}
