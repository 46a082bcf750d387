import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaCoordinatorNotReadyError } from '../../errors/kafka-coordinator-not-ready.error.js';
import type { CarriedFix } from '../kafkajs-loader.js';
import {
  type ConsumerGroupInternals,
  forgetDeletedTopics,
  stampFetched,
  TopicDeletions,
} from '../topic-deletion.js';

type ConsumerGroupClass = new (options: any) => any;

/** kafkajs 2.2.4's STALE_METADATA_ERRORS (consumerGroup.js): what a fetch answers when a partition's leader moved. */
const STALE_METADATA_ERRORS = new Set([
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'UNKNOWN_TOPIC_OR_PARTITION',
]);

/** A broker that cannot be reached (the error or one of its causes): kept inside the fetcher of that broker. */
const BROKER_UNREACHABLE = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
]);

export function isBrokerUnreachable(error: unknown): boolean {
  for (let e = error as { name?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.name === 'string' && BROKER_UNREACHABLE.has(e.name)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** Answers of a broker that is not (or no longer) the group's coordinator, as Java's consumer reads them. */
const NOT_THE_COORDINATOR = new Set(['NOT_COORDINATOR_FOR_GROUP', 'GROUP_COORDINATOR_NOT_AVAILABLE']);

/**
 * Whether a heartbeat or commit failed because the group's coordinator died or moved: the broker cannot be
 * reached or is gone from the cluster's metadata (the controller fenced it), or answered that it is not the
 * coordinator (any more) or has none. The Java consumer marks the coordinator unknown on these
 * (`AbstractCoordinator.markCoordinatorUnknown`) and looks it up again.
 */
export function isCoordinatorLost(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  if ((typeof type === 'string' && NOT_THE_COORDINATOR.has(type)) || isBrokerUnreachable(error)) return true;
  for (let e = error as { name?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.name === 'KafkaJSBrokerNotFound') return true;
    e = e.cause as typeof e;
  }
  return false;
}

/**
 * Answers of a coordinator that cannot serve the group yet: it is loading the group's partition of
 * `__consumer_offsets` (a broker just started, or just became its leader), or has none right now. The Java consumer
 * backs off and sends the JoinGroup, SyncGroup or OffsetFetch again (AbstractCoordinator's JoinGroup handler,
 * ConsumerCoordinator's OffsetFetch handler), looking the coordinator up again first on "not available".
 */
const COORDINATOR_NOT_READY = new Set(['GROUP_LOAD_IN_PROGRESS', 'GROUP_COORDINATOR_NOT_AVAILABLE']);

export function isCoordinatorNotReady(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' && COORDINATOR_NOT_READY.has(type);
}

/** As the Java consumer waits before it sends a request the coordinator could not serve again (`retry.backoff.ms`). */
const COORDINATOR_RETRY_BACKOFF_MS = 100;

const RECONNECT_BACKOFF_MS = 100;
/** As the Java consumer bounds its wait before reconnecting to a node (`reconnect.backoff.max.ms`). */
const RECONNECT_BACKOFF_MAX_MS = 1_000;

/** The wait before a fetcher tries its broker again after `failures` fetches in a row found it unreachable. */
export function reconnectBackoffMs(failures: number): number {
  return Math.min(RECONNECT_BACKOFF_MS * 2 ** Math.max(0, failures - 1), RECONNECT_BACKOFF_MAX_MS);
}

/**
 * Replaces kafkajs 2.2.4's consumer/consumerGroup.js by a subclass of the released ConsumerGroup. Upstream, a fetch
 * from one broker that fails because a partition's leadership moved (`recoverFromFetch`, the stale-metadata errors)
 * refreshes the metadata and then rejoins the group (`joinAndSync`) from inside that broker's fetcher, while the
 * fetchers of the other brokers go on and their batches still run. The rejoin builds a new OffsetManager, so every
 * offset resolved since the last commit, on every partition, is dropped without a commit and fetched again from the
 * committed offset; the library's members see the join as a new generation, so the batches still running stop
 * without resolving what they handled; a group leader's rejoin rebalances the whole group. Every member then handles
 * again what it had handled since its last commit, where no rebalance was needed at all.
 *
 * Here a stale-metadata error only refreshes the metadata, as the Java consumer does: the next fetch of each
 * fetcher goes to the partitions' current leaders and starts at the resolved offsets. A change of a subscribed
 * topic's partitions, which does need a rejoin, is still found by the next fetch's `checkForStaleAssignment`
 * (released behaviour). A refresh that finds a subscribed topic gone makes the member forget its positions in it
 * (topic-deletion.ts) before the error goes on as released; each fetch's batches are stamped with the deletions seen
 * when it began, so a batch of the deleted topic that ends later resolves nothing.
 *
 * A fetch from a broker that cannot be reached (connection refused, closed, or a request timed out) is kept inside
 * that broker's fetcher: it waits (doubling, up to 1 s), refreshes the metadata and returns no batches, so the
 * fetcher tries again, and once the metadata names other leaders for the broker's partitions (the controller fenced
 * it) the fetchers of those leaders fetch them. Upstream a refused connection was thrown to the runner, which
 * stopped every fetcher, retried after its backoff and, once its retries ran out, crashed the consumer, which then
 * rejoined the group; a closed connection dropped the broker from the pool, which made the fetch manager restart
 * every fetcher (and again when the next metadata listed the broker). Other fetch errors are handled as released.
 *
 * A heartbeat or commit that finds the group coordinator dead or moved (`isCoordinatorLost`) marks it unknown, and
 * the next heartbeat, commit or offset fetch first looks it up again (FindCoordinator), then points the group and
 * its offset manager at it, as the Java consumer does. Upstream the coordinator found at the join was kept until the
 * next join: heartbeats and commits went on to a dead broker (the offset manager reconnects to the same node id)
 * until the runner's retries ran out and the consumer crashed, and "not the coordinator" made the member rejoin.
 * The member's generation is kept: the new coordinator answers the next heartbeat, or tells the member it is no
 * longer in the group (unknown member, illegal generation), and kafkajs rejoins as released.
 */
/** A partition of kafkajs's cluster metadata (what the read-replica and stale-assignment checks read). */
interface PartitionMetadata {
  partitionId: number;
  leader: number | null;
}

/** The kafkajs modules a fetch is built with (the library's instance of each). */
interface FetchInternals {
  Batch: new (topic: string, fetchedOffset: string, partitionData: FetchedPartition) => object;
  sleep: (ms: number) => Promise<void>;
}

/** A partition of a Fetch response, as the carried decoder returns it. */
interface FetchedPartition {
  partition: number;
  preferredReadReplica?: number;
}

/** One topic of a Fetch request: what the broker is asked for. */
interface TopicRequest {
  topic: string;
  partitions: Array<{ partition: number; fetchOffset: string; maxBytes: number }>;
}

/**
 * Whether `partitions` is already in the order of kafkajs's `partitions.sort()` (no comparator: as strings). The
 * assignment's lists are sorted in place by the first fetch, so later fetches find them sorted.
 */
function sortedAsStrings(partitions: readonly number[]): boolean {
  for (let i = 1; i < partitions.length; i++)
    if (String(partitions[i - 1]) > String(partitions[i])) return false;
  return true;
}

export const consumerGroupFix: CarriedFix = {
  module: 'src/consumer/consumerGroup.js',
  sha256: 'f3e461738585a8dc6574c647123a18afc732f81cdee4f9f7bb62e4aa1dffbfbb',
  create: (require, released) =>
    createConsumerGroup(released() as ConsumerGroupClass, {
      Batch: require('./batch'),
      sleep: require('../utils/sleep'),
    }),
};

export function createConsumerGroup(
  Released: ConsumerGroupClass,
  internals: FetchInternals,
): ConsumerGroupClass {
  const { Batch } = internals;
  return class ConsumerGroup extends Released {
    /** Fetches in a row, per broker, that found it unreachable: the backoff before the next. */
    readonly unreachableFetches = new Map<string, number>();
    /** The subscribed topics this group saw deleted: each fetch's batches carry the count when it began. */
    readonly topicDeletions = new TopicDeletions();
    /** Set when a request found the coordinator dead or moved; cleared once a lookup found the current one. */
    coordinatorUnknown = false;
    /** The lookup under way, shared by the heartbeat and the commits that wait for it. */
    coordinatorLookup: Promise<void> | undefined;
    /** When the last join ended (epoch ms): the coordinator counts the member's session from its JoinGroup. */
    joinedAt = 0;

    /**
     * Every fetch asks which broker to read each assigned partition from. Released, the answer is built by copying
     * the result object and the node's partition list once per partition (a spread of each); here, while no
     * partition of the topic has a preferred read replica and each has a leader in the metadata (the common case:
     * the answer is each partition's leader), it is filled in place, the same nodes and partitions in the same
     * order. Anything else goes the released way, with its logs and errors.
     */
    findReadReplicaForPartitions(
      topic: string,
      partitions: Array<number | string>,
    ): Record<number, number[]> {
      const partitionMetadata = this.cluster.findTopicPartitionMetadata(topic) as PartitionMetadata[];
      const preferredReadReplicas = this.preferredReadReplicasPerTopicPartition[topic] as
        Record<number, unknown> | undefined;
      const result: Record<number, number[]> = {};
      for (const id of partitions) {
        const partitionId = typeof id === 'number' ? id : parseInt(id, 10);
        let metadata: PartitionMetadata | undefined;
        for (const candidate of partitionMetadata)
          if (candidate.partitionId === partitionId) {
            metadata = candidate;
            break;
          }
        if (metadata?.leader == null || preferredReadReplicas?.[partitionId] !== undefined)
          return super.findReadReplicaForPartitions(topic, partitions);
        const listed = result[metadata.leader];
        if (listed === undefined) result[metadata.leader] = [partitionId];
        else listed.push(partitionId);
      }
      return result;
    }

    /**
     * Every fetch checks that the subscribed topics still have the partitions of the assignment. Released, it
     * builds a map of each topic's partitions, sorted, and a difference list; here each partition of the metadata
     * is looked up in the assignment's list, and only one that is missing goes the released way, which throws the
     * same error as before.
     */
    checkForStaleAssignment(): void {
      const assigned = this.partitionsPerSubscribedTopic as Map<string, number[]> | undefined;
      if (!assigned) return;
      for (const topic of this.topicsSubscribed as Iterable<string>) {
        const known = assigned.get(topic);
        for (const { partitionId } of this.cluster.findTopicPartitionMetadata(topic) as PartitionMetadata[])
          if (known === undefined || !known.includes(partitionId)) return super.checkForStaleAssignment();
      }
    }

    markCoordinatorUnknown(error: unknown): void {
      if (!this.coordinatorUnknown) {
        this.logger.debug('Group coordinator lost, looking it up again before the next request', {
          groupId: this.groupId,
          memberId: this.memberId,
          nodeId: this.coordinator?.nodeId,
          error: (error as Error).message,
        });
      }
      this.coordinatorUnknown = true;
    }

    /**
     * Resolves once the coordinator is known: at once when it is, else after one lookup (Java's
     * `ensureCoordinatorReady`), which rejects when no broker named a reachable coordinator. The caller's request
     * then fails with that error and the coordinator stays unknown: the next request looks it up again.
     */
    ensureCoordinator(): Promise<void> | undefined {
      if (!this.coordinatorUnknown) return undefined;
      this.coordinatorLookup ??= this.lookUpCoordinator().finally(() => {
        this.coordinatorLookup = undefined;
      });
      return this.coordinatorLookup;
    }

    async lookUpCoordinator(): Promise<void> {
      const { coordinator: found } = (await this.cluster.findGroupCoordinatorMetadata({
        groupId: this.groupId,
      })) as { coordinator: { nodeId: number } };
      // Connects to it; an unreachable or unknown node refreshes the metadata before the error is thrown.
      const coordinator = await this.cluster.findBroker({ nodeId: found.nodeId });
      this.coordinator = coordinator;
      if (this.offsetManager) this.offsetManager.coordinator = coordinator;
      this.coordinatorUnknown = false;
      this.logger.info('Group coordinator found', {
        groupId: this.groupId,
        memberId: this.memberId,
        nodeId: found.nodeId,
      });
    }

    /** Runs a request to the coordinator: looks the coordinator up first if it is unknown, marks it lost on failure. */
    async toCoordinator<T>(request: () => Promise<T>): Promise<T> {
      try {
        const lookup = this.ensureCoordinator();
        if (lookup !== undefined) await lookup;
        return await request();
      } catch (error) {
        if (isCoordinatorLost(error)) this.markCoordinatorUnknown(error);
        throw error;
      }
    }

    heartbeat(options: { interval: number }): Promise<void> {
      return this.toCoordinator(() => super.heartbeat(options) as Promise<void>);
    }

    commitOffsets(offsets?: unknown): Promise<void> {
      return this.toCoordinator(() => super.commitOffsets(offsets) as Promise<void>);
    }

    commitOffsetsIfNecessary(): Promise<void> {
      return this.toCoordinator(() => super.commitOffsetsIfNecessary() as Promise<void>);
    }

    /**
     * A join looks the coordinator up itself (kafkajs's FindCoordinator before JoinGroup). One the coordinator
     * answers "loading" or "not available" is sent again (FindCoordinator first) after the consumer's retry
     * backoff, for its retry budget, then fails with `KafkaCoordinatorNotReadyError`; kafkajs gave up at once, so
     * the first join on a broker that had just started crashed the consumer.
     */
    async joinAndSync(): Promise<void> {
      try {
        await this.retrier(async (bail: (error: unknown) => void, retryCount: number, retryTime: number) => {
          try {
            await super.joinAndSync();
          } catch (error) {
            if (!isCoordinatorNotReady(error)) return bail(error);
            this.logger.debug('Group coordinator not ready, joining again after a backoff', {
              groupId: this.groupId,
              memberId: this.memberId,
              retryCount,
              retryTime,
              error: (error as Error).message,
            });
            throw error;
          }
        });
      } catch (error) {
        const failure = error as { name?: string; cause?: unknown; retryCount?: number };
        if (failure.name === 'KafkaJSNumberOfRetriesExceeded' && isCoordinatorNotReady(failure.cause))
          throw new KafkaCoordinatorNotReadyError(this.groupId, failure.retryCount ?? 0, failure.cause);
        throw error;
      }
      this.coordinatorUnknown = false;
      this.joinedAt = Date.now();
    }

    async fetch(nodeId: string | number): Promise<unknown[]> {
      const key = String(nodeId);
      const deletionsSeen = this.topicDeletions.seen;
      try {
        const batches = await this.fetchAssigned(nodeId);
        this.unreachableFetches.delete(key);
        stampFetched(batches, this.topicDeletions, deletionsSeen);
        return batches;
      } catch (error) {
        if (!isBrokerUnreachable(error)) throw error;
        const failures = (this.unreachableFetches.get(key) ?? 0) + 1;
        this.unreachableFetches.set(key, failures);
        const waitMs = reconnectBackoffMs(failures);
        this.logger.debug('Broker unreachable, fetching from it again after a metadata refresh', {
          groupId: this.groupId,
          memberId: this.memberId,
          nodeId,
          failures,
          waitMs,
          error: (error as Error).message,
        });
        await sleep(waitMs);
        await this.cluster.refreshMetadata();
        return [];
      }
    }

    /**
     * The released fetch (consumerGroup.js `fetch`), the same steps in the same order with the same requests,
     * batches and errors, without its per-fetch copies: released, every fetch sorted the assignment's partition
     * lists again (as strings), copied them per node, built the active partitions (filtered, sorted, a Set per
     * topic), three arrays and an object per topic for the request, and for the answer a flatMap, a filter, a
     * find per partition and a JSON key per partition for the seek check. At a low rate a fetch brings a few
     * records, and this was a good part of each fetch cycle. The metadata refresh and the broker lookup are skipped
     * when they would do nothing (metadata current, the broker's connection up), as their own tests find. A topic
     * the assignment no longer has when the request is built (a rejoin during the offsets' lookup) is not asked
     * for; released, that threw a TypeError.
     */
    /**
     * Whether the cluster's metadata is loaded, not expired and lists every topic the cluster targets: the test of
     * kafkajs's BrokerPool.refreshMetadataIfNecessary, which each fetch reaches through three async layers and a
     * copy of the topic list only to find nothing to do. When it fails, the fetch goes that way.
     */
    metadataCurrent(): boolean {
      const pool = this.cluster.brokerPool as
        | {
            metadata?: { topicMetadata: Array<{ topic: string }> } | null;
            metadataExpireAt?: number | null;
          }
        | undefined;
      const metadata = pool?.metadata;
      if (metadata == null || pool!.metadataExpireAt == null || Date.now() > pool!.metadataExpireAt)
        return false;
      for (const topic of this.cluster.targetTopics as Set<string>) {
        let listed = false;
        for (const known of metadata.topicMetadata)
          if (known.topic === topic) {
            listed = true;
            break;
          }
        if (!listed) return false;
      }
      return true;
    }

    async fetchAssigned(nodeId: string | number): Promise<object[]> {
      try {
        if (!this.metadataCurrent()) await this.cluster.refreshMetadataIfNecessary();
        this.checkForStaleAssignment();

        const assigned = this.subscriptionState.assignedPartitionsByTopic as Record<
          string,
          { topic: string; partitions: number[] }
        >;
        const topicPartitions: Array<{ topic: string; partitions: number[] }> = [];
        for (const name in assigned) {
          const { topic, partitions } = assigned[name];
          if (!sortedAsStrings(partitions)) partitions.sort();
          topicPartitions.push({
            topic,
            partitions: this.findReadReplicaForPartitions(topic, partitions)[nodeId as number] || [],
          });
        }

        await this.seekOffsets(topicPartitions);

        const committedOffsets = this.offsetManager.committedOffsets();
        const subscriptionState = this.subscriptionState;
        const assignedNow = subscriptionState.assignedPartitionsByTopic as typeof assigned;
        const requests: TopicRequest[] = [];
        for (const { topic, partitions } of topicPartitions) {
          let requested: TopicRequest['partitions'] | undefined;
          for (const partition of partitions) {
            // Only partitions with initialized offsets, as released (kafkajs#578).
            if (
              committedOffsets[topic][partition] == null ||
              assignedNow[topic]?.partitions.includes(partition) !== true ||
              subscriptionState.isPaused(topic, partition)
            )
              continue;
            (requested ??= []).push({
              partition,
              fetchOffset: this.offsetManager.nextFetchOffset(topic, partition),
              maxBytes: this.maxBytesPerPartition,
            });
          }
          if (requested !== undefined) requests.push({ topic, partitions: requested });
        }

        if (requests.length === 0) {
          await internals.sleep(this.maxWaitTime);
          return [];
        }

        const pooled = this.cluster.brokerPool?.brokers?.[nodeId];
        const broker = pooled?.isConnected() ? pooled : await this.cluster.findBroker({ nodeId });
        const { responses } = (await broker.fetch({
          maxWaitTime: this.maxWaitTime,
          minBytes: this.minBytes,
          maxBytes: this.maxBytes,
          isolationLevel: this.isolationLevel,
          topics: requests,
          rackId: this.rackId,
        })) as { responses: Array<{ topicName: string; partitions: FetchedPartition[] }> };

        const seekOffset = this.seekOffset as {
          size: number;
          has(topic: string, partition: number): boolean;
        };
        const batches: object[] = [];
        for (const { topicName, partitions } of responses) {
          let topicRequest: TopicRequest | undefined;
          for (const request of requests)
            if (request.topic === topicName) {
              topicRequest = request;
              break;
            }
          let preferredReadReplicas = this.preferredReadReplicasPerTopicPartition[topicName] as
            Record<number, { nodeId: number; expireAt: number }> | undefined;
          if (!preferredReadReplicas)
            this.preferredReadReplicasPerTopicPartition[topicName] = preferredReadReplicas = {};

          for (const partitionData of partitions) {
            const { partition, preferredReadReplica } = partitionData;
            if (
              (seekOffset.size > 0 && seekOffset.has(topicName, partition)) ||
              subscriptionState.isPaused(topicName, partition)
            )
              continue;

            if (preferredReadReplica != null && preferredReadReplica !== -1) {
              const { nodeId: currentPreferredReadReplica } = preferredReadReplicas[partition] || {};
              if (currentPreferredReadReplica !== preferredReadReplica) {
                this.logger.info(`Preferred read replica is now ${preferredReadReplica}`, {
                  groupId: this.groupId,
                  memberId: this.memberId,
                  topic: topicName,
                  partition,
                });
              }
              preferredReadReplicas[partition] = {
                nodeId: preferredReadReplica,
                expireAt: Date.now() + this.metadataMaxAge,
              };
            }

            let fetchOffset: string | undefined;
            for (const requested of topicRequest!.partitions)
              if (requested.partition === partition) {
                fetchOffset = requested.fetchOffset;
                break;
              }
            batches.push(new Batch(topicName, fetchOffset!, partitionData));
          }
        }
        return batches;
      } catch (error) {
        await this.recoverFromFetch(error as { type?: string; name?: string; message?: string });
        return [];
      }
    }

    async recoverFromFetch(error: { type?: string; name?: string; message?: string }): Promise<void> {
      // To fetch() above, which knows the broker.
      if (isBrokerUnreachable(error)) throw error;
      // The committed offsets' OffsetFetch (before a partition's first fetch): sent again by the fetcher's next
      // fetch, heartbeats going on meanwhile (which look the coordinator up first when it was not available).
      if (isCoordinatorNotReady(error)) {
        if (error.type === 'GROUP_COORDINATOR_NOT_AVAILABLE') this.markCoordinatorUnknown(error);
        this.logger.debug(
          'Group coordinator not ready for the committed offsets, fetching again after a backoff',
          {
            groupId: this.groupId,
            memberId: this.memberId,
            error: error.message,
          },
        );
        await sleep(COORDINATOR_RETRY_BACKOFF_MS);
        return;
      }
      if (
        (error.type !== undefined && STALE_METADATA_ERRORS.has(error.type)) ||
        error.name === 'KafkaJSTopicMetadataNotLoaded'
      ) {
        this.logger.debug('Stale cluster metadata, refreshing (no rejoin)', {
          groupId: this.groupId,
          memberId: this.memberId,
          error: error.message,
        });
        try {
          await this.cluster.refreshMetadata();
        } catch (refreshError) {
          // The metadata of a subscribed topic is gone: it may have been deleted.
          if ((refreshError as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION')
            await forgetDeletedTopics(this as unknown as ConsumerGroupInternals);
          throw refreshError;
        }
        return;
      }
      return super.recoverFromFetch(error);
    }
  };
}
