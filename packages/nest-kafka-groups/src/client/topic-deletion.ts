import { Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { positionReset } from './offset-out-of-range.js';

interface MetadataBroker {
  isConnected(): boolean;
  metadata(topics: string[]): Promise<unknown>;
}

/** kafkajs 2.2.4's Broker.offsetFetch (src/broker/index.js), as the group's coordinator answers it. */
interface OffsetFetchBroker {
  offsetFetch(request: {
    groupId: string;
    topics: { topic: string; partitions: { partition: number }[] }[];
  }): Promise<{ responses: { topic: string; partitions: { partition: number; offset: string }[] }[] }>;
}

/**
 * How long a member waits for the coordinator to drop a deleted topic's committed offsets: a bound, in polls.
 * The broker stops naming a deleted topic in its metadata a little before its group coordinator drops the
 * topic's offsets (two steps of applying the deletion); between the two, an offset fetch still answers the old
 * topic's committed offsets.
 */
export const OFFSETS_DROPPED_WAIT = { polls: 100, intervalMs: 50 };

/** The parts of kafkajs 2.2.4's ConsumerGroup (src/consumer/consumerGroup.js, fixed) this module uses. */
export interface ConsumerGroupInternals {
  groupId: string;
  memberId: string | null;
  topicsSubscribed: string[];
  cluster: {
    brokerPool: {
      brokers: Record<string, MetadataBroker>;
      findConnectedBroker(): Promise<MetadataBroker>;
    };
  };
  /** The carried OffsetManager (fixes/offset-manager.ts); null before the first join. */
  offsetManager: {
    topicDeleted(topic: string): Map<number, string | undefined>;
    getCoordinator(): Promise<OffsetFetchBroker>;
  } | null;
  /** The deletions this consumer group saw (the carried ConsumerGroup's, fixes/consumer-group.ts). */
  topicDeletions: TopicDeletions;
}

/**
 * The topic deletions a consumer group saw, counted: each fetch's batches are stamped with the count when the
 * fetch began (`stampFetched`), so a batch of a topic deleted since (fetched from the old topic, or from the new
 * one at the old position) is told apart from one fetched after its positions were forgotten, even when the topic
 * exists again by the time the batch ends. kafkajs has no topic ids: this count stands in for them.
 */
export class TopicDeletions {
  private count = 0;
  /** The count each deleted topic was last seen deleted at (subscribed topics only). */
  private readonly deletedAt = new Map<string, number>();

  get seen(): number {
    return this.count;
  }

  deleted(topic: string): void {
    this.deletedAt.set(topic, ++this.count);
  }

  /** Whether `topic` was seen deleted after the count was `seen`. */
  since(topic: string, seen: number): boolean {
    return seen !== this.count && (this.deletedAt.get(topic) ?? 0) > seen;
  }
}

const FETCHED = Symbol('nest-kafka-groups:fetched');

interface FetchStamp {
  deletions: TopicDeletions;
  seen: number;
}

/** Stamps the batches of a fetch that began when `deletions` had counted `seen`. */
export function stampFetched(batches: object[], deletions: TopicDeletions, seen: number): void {
  if (batches.length === 0) return;
  const stamp: FetchStamp = { deletions, seen };
  for (const batch of batches) (batch as { [FETCHED]?: FetchStamp })[FETCHED] = stamp;
}

/**
 * Whether the batch's topic was seen deleted after its fetch began: its offsets belong to the deleted topic (or
 * were read from the new one at the old position), and resolving one would move the topic of that name, created
 * again, past records it never handed over. False for a batch no stamped fetch returned.
 */
export function fetchedBeforeDeletion(batch: { topic: string }): boolean {
  const stamp = (batch as { [FETCHED]?: FetchStamp })[FETCHED];
  return stamp !== undefined && stamp.deletions.since(batch.topic, stamp.seen);
}

const logger = new Logger('KafkaTopicDeleted');

/**
 * Called when a metadata refresh of the member's subscribed topics failed with UNKNOWN_TOPIC_OR_PARTITION: asks the
 * broker about each subscribed topic on its own, and for each one it reports unknown (deleted: Kafka deleted the
 * group's committed offsets with it) forgets the member's positions and failures in it, so a topic created again
 * under that name starts at the group's committed offset, else its earliest, not at the old topic's position.
 * Only every connected broker naming the topic unknown counts: a fetch error, a leader move or a broker that cannot be reached
 * forgets nothing. The deletion is counted (`TopicDeletions`): a batch fetched before it, still queued or in its
 * handler (another broker's fetcher), resolves nothing (see `fetchedBeforeDeletion`). Done again on every such
 * refresh while the topic is missing; warns once per topic.
 */
export async function forgetDeletedTopics(
  group: ConsumerGroupInternals,
  wait = OFFSETS_DROPPED_WAIT,
): Promise<void> {
  const { groupId, memberId, offsetManager, topicDeletions } = group;
  let deleted: string[];
  try {
    deleted = await deletedTopics(group);
  } catch (error) {
    logger.debug(`Group "${groupId}": could not tell which topic is missing (${(error as Error).message})`);
    return;
  }
  for (const topic of deleted) {
    topicDeletions.deleted(topic);
    const forgotten = offsetManager?.topicDeleted(topic) ?? new Map<number, string | undefined>();
    const positions: string[] = [];
    for (const [partition, offset] of forgotten) {
      if (memberId !== null) positionReset(groupId, memberId, topic, partition, 'topic-deleted');
      if (offset !== undefined) positions.push(`[${partition}]@${offset}`);
    }
    if (forgotten.size > 0 && offsetManager) await offsetsDropped(group, topic, [...forgotten.keys()], wait);
    if (positions.length === 0) continue;
    logger.warn(
      `Group "${groupId}": topic "${topic}" was deleted; this member forgets its positions ${positions.join(', ')}. ` +
        'Created again, these partitions start at the offset the group commits for them, else at their earliest',
    );
  }
}

/**
 * Returns once the group's coordinator answers no committed offset for the deleted topic's `partitions`, so that
 * the member's next offset fetch cannot start the topic, created again in the meantime, at the old topic's
 * committed offset and skip the new records below it. Bounded by `wait`; a coordinator that cannot be asked
 * ends the wait (the fetch retries as before).
 */
async function offsetsDropped(
  { groupId, offsetManager }: ConsumerGroupInternals,
  topic: string,
  partitions: number[],
  wait: typeof OFFSETS_DROPPED_WAIT,
): Promise<void> {
  let committed: string[] = [];
  for (let poll = 0; poll < wait.polls; poll++) {
    if (poll > 0) await sleep(wait.intervalMs);
    try {
      const coordinator = await offsetManager!.getCoordinator();
      const { responses } = await coordinator.offsetFetch({
        groupId,
        topics: [{ topic, partitions: partitions.map((partition) => ({ partition })) }],
      });
      committed = responses
        .filter((response) => response.topic === topic)
        .flatMap((response) => response.partitions)
        .filter(({ offset }) => offset !== '-1')
        .map(({ partition, offset }) => `[${partition}]@${offset}`);
    } catch (error) {
      logger.debug(
        `Group "${groupId}": could not ask for the committed offsets of deleted topic "${topic}" (${(error as Error).message})`,
      );
      return;
    }
    if (committed.length === 0) return;
  }
  logger.warn(
    `Group "${groupId}": the coordinator still holds committed offsets ${committed.join(', ')} of deleted topic ` +
      `"${topic}" after ${wait.polls * wait.intervalMs} ms; a topic created again under that name may start there`,
  );
}

/**
 * The subscribed topics that every connected broker answers unknown. A broker that has not applied the latest
 * metadata yet (restarted in a ZooKeeper-mode cluster before the controller's UpdateMetadata; cut off from the KRaft
 * quorum) answers unknown for a live topic: one such answer is not a deletion.
 */
async function deletedTopics({ cluster, topicsSubscribed }: ConsumerGroupInternals): Promise<string[]> {
  const { brokerPool } = cluster;
  const connected = Object.values(brokerPool.brokers).filter((broker) => broker.isConnected());
  const brokers = connected.length > 0 ? connected : [await brokerPool.findConnectedBroker()];
  const answers = await Promise.all(
    topicsSubscribed.map(async (topic) => {
      const unknown = await Promise.all(brokers.map((broker) => unknownTo(broker, topic)));
      return unknown.every(Boolean) ? topic : undefined;
    }),
  );
  return answers.filter((topic) => topic !== undefined);
}

async function unknownTo(broker: MetadataBroker, topic: string): Promise<boolean> {
  try {
    await broker.metadata([topic]);
    return false;
  } catch (error) {
    if ((error as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return true;
    throw error;
  }
}
