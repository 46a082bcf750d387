import { Logger } from '@nestjs/common';

/** The parts of kafkajs 2.2.4's ConsumerGroup (src/consumer/consumerGroup.js) the reset uses. */
interface ConsumerGroupInternals {
  groupId: string;
  memberId: string;
  generationId: number;
  preferredReadReplicasPerTopicPartition: Record<string, Record<number, number> | undefined>;
  cluster: {
    fetchTopicsOffset(
      topics: { topic: string; fromBeginning: boolean; partitions: { partition: number }[] }[],
    ): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
  };
  offsetManager: {
    nextOffset(topic: string, partition: number): { toString(): string };
    getCoordinator(): Promise<{
      offsetCommit(request: {
        groupId: string;
        memberId: string;
        groupGenerationId: number;
        topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
      }): Promise<unknown>;
    }>;
    clearOffsets(topicPartition: { topic: string; partition: number }): void;
  };
}

interface OutOfRange {
  topic: string;
  partition: number;
}

const logger = new Logger('KafkaOffsetReset');

/**
 * Why a member's fetch position moved back: the out-of-range policy reset it, or its topic was deleted (offsets of
 * the old topic then say nothing about the records of a topic created again under its name).
 */
export type PositionReset = 'out-of-range' | 'topic-deleted';
type PositionResetListener = (topic: string, partition: number, reason: PositionReset) => void;
const positionResetListeners = new Map<string, PositionResetListener>();
const memberKey = (groupId: string, memberId: string) => `${groupId}\u0000${memberId}`;

/**
 * Tells `listener` when a fetch position of this group member moved back (the partition is fetched again from an
 * offset that can be below offsets already processed: a truncated log, a topic deleted and created again).
 * Returns the function that stops it.
 */
export function onPositionReset(
  groupId: string,
  memberId: string,
  listener: PositionResetListener,
): () => void {
  const key = memberKey(groupId, memberId);
  positionResetListeners.set(key, listener);
  return () => {
    if (positionResetListeners.get(key) === listener) positionResetListeners.delete(key);
  };
}

/** Tells the member (if it listens) that its position in this partition moved back. */
export function positionReset(
  groupId: string,
  memberId: string,
  topic: string,
  partition: number,
  reason: PositionReset,
): void {
  positionResetListeners.get(memberKey(groupId, memberId))?.(topic, partition, reason);
}

/**
 * The policy for a fetch offset the broker no longer has (OffsetOutOfRange: retention deleted the messages from
 * the committed offset on, or the log was truncated below it): go on from the earliest message still in the log,
 * whatever `fromBeginning` says. kafkajs reset to the log end when `fromBeginning` was false, which skipped every
 * message still retained; `fromBeginning` only chooses where a group with no committed offset starts. What
 * retention deleted is gone either way; the warning says how many offsets that was.
 */
export async function resetToEarliest(group: ConsumerGroupInternals, { topic, partition }: OutOfRange) {
  const { groupId, memberId, generationId, offsetManager } = group;
  const from = offsetManager.nextOffset(topic, partition).toString();
  const [earliest] = await group.cluster.fetchTopicsOffset([
    { topic, fromBeginning: true, partitions: [{ partition }] },
  ]);
  const offset = earliest.partitions[0].offset;
  const coordinator = await offsetManager.getCoordinator();
  await coordinator.offsetCommit({
    groupId,
    memberId,
    groupGenerationId: generationId,
    topics: [{ topic, partitions: [{ partition, offset }] }],
  });
  offsetManager.clearOffsets({ topic, partition });
  positionReset(groupId, memberId, topic, partition, 'out-of-range');
  const gap = BigInt(offset) - BigInt(from);
  logger.warn(
    `Group "${groupId}": offset ${from} of ${topic}[${partition}] is out of range; going on from the earliest ` +
      `retained offset ${offset}` +
      (gap > 0n
        ? `: offsets ${from} to ${BigInt(offset) - 1n} (${gap}) were deleted by retention before this group processed them`
        : ' (the log was truncated below it: messages from there on are processed again)'),
  );
}

/** Installs the policy on the library's kafkajs instance (its ConsumerGroup class only). */
export function installOffsetOutOfRangePolicy(internal: (module: string) => any): void {
  const ConsumerGroup = internal('src/consumer/consumerGroup.js') as {
    prototype: {
      recoverFromOffsetOutOfRange(this: ConsumerGroupInternals, error: OutOfRange): Promise<void>;
    };
  };
  const original = ConsumerGroup.prototype.recoverFromOffsetOutOfRange;
  ConsumerGroup.prototype.recoverFromOffsetOutOfRange = function (error) {
    // Fetching from a follower: kafkajs first retries with the leader, as before.
    const replicas = this.preferredReadReplicasPerTopicPartition[error.topic];
    if (replicas && typeof replicas[error.partition] === 'number') return original.call(this, error);
    return resetToEarliest(this, error);
  };
}
