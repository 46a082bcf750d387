import { Logger } from '@nestjs/common';
import { KafkaClientCompatibilityError } from '../../errors/kafka-client-compatibility.error.js';
import { type CarriedFix, KAFKAJS_VERSION } from '../kafkajs-loader.js';

type OffsetManagerClass = new (options: any) => any;
type CommittedOffsets = Record<string, Record<number, string>>;
type TopicOffsets = { topic: string; partitions: { partition: number; offset: string }[] }[];

const logger = new Logger('KafkaOffsetReset');

/**
 * Says where partitions without a committed offset start, as Java's consumer logs "Resetting offset for
 * partition": a new group, a partition added, or offsets deleted by an admin (`kafka-consumer-groups.sh
 * --delete-offsets`, `--delete`) or expired (`offsets.retention.minutes`). Starting at the log end skips what was
 * written before; the line makes that visible.
 */
function logStartWithoutCommit(
  groupId: string,
  { topic, partitions }: TopicOffsets[number],
  where: string,
): void {
  if (partitions.length === 0) return;
  const at = [...partitions]
    .sort((a, b) => a.partition - b.partition)
    .map(({ partition, offset }) => `${topic}[${partition}] at ${offset}`)
    .join(', ');
  logger.log(`Group "${groupId}" has no committed offset for ${at}: starting there (${where})`);
}

const MODULE = 'src/consumer/offsetManager/index.js';

/** An offset as the cache holds it: a decimal that fits a signed 64-bit integer (at most 18 digits). */
const DECIMAL_OFFSET = /^\d{1,18}$/;
/** An offset as a 64-bit Long prints it: no leading zero, below 2^63 (at most 18 digits). */
const CANONICAL_OFFSET = /^(?:0|[1-9]\d{0,17})$/;

/**
 * Replaces kafkajs 2.2.4's consumer/offsetManager by a subclass of the released OffsetManager, for two defects that
 * break consumers of one `Kafka` client in one group (this library's members of a group in one process):
 * - The committed-offset cache came from the cluster, and every cluster of a `Kafka` client shares it per group id
 *   (a map kept for the transactional producer's `sendOffsets`). Each member's join builds a new OffsetManager whose
 *   constructor deletes every topic of that shared cache and re-creates only its own assignment's: a member that
 *   joins with no partition of a topic (an idle member) removes the topic from under its siblings, whose next
 *   commit or fetch throws `TypeError: Cannot read properties of undefined (reading '<partition>')`; the consumer
 *   crashes, and the offsets resolved since its last commit are redelivered. Here each OffsetManager keeps its own
 *   cache (one consumer, one generation), as the Java client does. None of the library's producers is
 *   transactional, so no `sendOffsets` needs to reach it.
 * - An offset resolved for a partition outside this generation's assignment (a batch of an earlier generation
 *   that ends after the rejoin) was kept and committed with the new generation's id, over the commits of the
 *   member that owns the partition now; a topic outside the assignment threw a TypeError. Here it is ignored: the
 *   owner goes on from the group's committed offset (at-least-once).
 * - A partition added to a topic while the group runs has no committed offset, so `fromBeginning: false` started it
 *   at its log end when the group noticed it (within `metadataMaxAge`): what producers wrote to it meanwhile was
 *   skipped (Java's `auto.offset.reset=latest` does the same, KAFKA-12261). Here a partition at or above the count
 *   the group's members in this process first saw for its topic (a topic missing then counts 0), with no committed
 *   offset, starts at its earliest offset: it was created after the group began, so nothing in it predates the group.
 * - A topic deleted while the group runs took the group's committed offsets with it, but this cache and the resolved
 *   offsets kept the old positions: created again and written beyond them before the next fetch, the new topic was
 *   fetched from the old position and its first records skipped. `topicDeleted` (called when the metadata shows the
 *   topic gone, see topic-deletion.ts) forgets them and counts the topic as new (0 partitions first seen), so a
 *   topic created again starts at the group's committed offset, if one was committed since, else its earliest.
 * - A partition without a committed offset (a new group, offsets deleted with `kafka-consumer-groups.sh
 *   --delete-offsets` or `--delete`, or expired) started at its log end or earliest offset without a word. Here
 *   each one is logged with the offset it starts at (`logStartWithoutCommit`).
 */
export const offsetManagerFix: CarriedFix = {
  module: MODULE,
  sha256: 'bd1041968ae322324ebf64d2569308db19d24f70ee5dbb72c964b43bfe85c00e',
  create: (require, released) =>
    createOffsetManager(
      released() as OffsetManagerClass,
      require('./isInvalidOffset'),
      require('./initializeConsumerOffsets'),
    ),
};

/**
 * Per group id, the partition count of each subscribed topic when this process's members of the group first
 * resolved offsets. Never raised: every partition at or above it was added while the group ran.
 * Bounded, so that group ids used once (a reader's fresh group each time) do not pile up: a group's entry is taken
 * again on every fetch of its members (kafkajs resolves offsets before each), and the one dropped first is that of
 * the group that fetched least recently, one that stopped (a stopped group started again then counts as a process
 * that starts: README, partitions added).
 */
export class FirstSeenPartitions {
  private readonly groups = new Map<string, Map<string, number>>();

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.groups.size;
  }

  /** The group's topics' first-seen partition counts; the group becomes the most recently used. */
  of(groupId: string): Map<string, number> {
    let seen = this.groups.get(groupId);
    if (seen !== undefined) {
      this.groups.delete(groupId);
    } else {
      seen = new Map();
      if (this.groups.size >= this.limit) this.groups.delete(this.groups.keys().next().value!);
    }
    this.groups.set(groupId, seen);
    return seen;
  }
}

/** Far more groups than one process runs at once: only groups that stopped fetching are dropped. */
const FIRST_SEEN_GROUPS = 1_024;
const firstSeenPartitions = new FirstSeenPartitions(FIRST_SEEN_GROUPS);

export function createOffsetManager(
  Released: OffsetManagerClass,
  isInvalidOffset: (offset: unknown) => boolean,
  initializeConsumerOffsets: (consumerOffsets: TopicOffsets, topicOffsets: TopicOffsets) => TopicOffsets,
): OffsetManagerClass {
  const committedKey = committedOffsetsKey(Released);
  // kafkajs's test builds a 64-bit Long per offset; a decimal below 2^63 is valid without one.
  const invalidOffset = (offset: unknown): boolean =>
    typeof offset === 'string' && DECIMAL_OFFSET.test(offset) ? false : isInvalidOffset(offset);

  return class OffsetManager extends Released {
    /**
     * kafkajs resolves the offsets of assigned partitions missing from the cache before each fetch. Added
     * partitions are resolved first (earliest, unless the group committed one), the rest as kafkajs 2.2.4 does
     * (the group's committed offset, else the earliest or latest as `fromBeginning` says), and a partition without
     * a committed offset is logged with where it starts.
     */
    async resolveOffsets(): Promise<void> {
      if (this.everyOffsetResolved()) return;
      const added = this.addedPartitionsToResolve();
      if (added.length > 0) await this.startAtEarliest(added);
      const pending = (this.topics as string[])
        .map((topic) => ({
          topic,
          partitions: (this.memberAssignment[topic] as number[])
            .filter((partition) => isInvalidOffset(this.committedOffsets()[topic][partition]))
            .map((partition) => ({ partition })),
        }))
        .filter(({ partitions }) => partitions.length > 0);
      if (pending.length === 0) return;
      const coordinator = await this.getCoordinator();
      const { responses } = (await coordinator.offsetFetch({ groupId: this.groupId, topics: pending })) as {
        responses: TopicOffsets;
      };
      const unresolved = responses
        .map(({ topic, partitions }) => ({
          topic,
          fromBeginning: Boolean(this.topicConfigurations[topic].fromBeginning),
          partitions: partitions
            .filter(({ offset }) => isInvalidOffset(offset))
            .map(({ partition }) => ({ partition })),
        }))
        .filter(({ partitions }) => partitions.length > 0);
      let offsets = responses;
      if (unresolved.length > 0) {
        const topicOffsets: TopicOffsets = await this.cluster.fetchTopicsOffset(unresolved);
        offsets = initializeConsumerOffsets(responses, topicOffsets);
        const fromBeginning = new Set(unresolved.filter((t) => t.fromBeginning).map(({ topic }) => topic));
        for (const started of topicOffsets) {
          logStartWithoutCommit(
            this.groupId,
            started,
            fromBeginning.has(started.topic)
              ? 'the earliest offset, fromBeginning: true'
              : 'the log end, fromBeginning: false',
          );
        }
      }
      for (const { topic, partitions } of offsets) {
        const cached = { ...this.committedOffsets()[topic] };
        for (const { partition, offset } of partitions) cached[partition] = offset;
        this.committedOffsets()[topic] = cached;
      }
    }

    /**
     * Whether the lookup of resolveOffsets would find nothing to do: every topic's first-seen partition count is
     * known and every assigned partition has an offset in the cache. It runs before every fetch and nearly always
     * finds that; the lists it builds to find it out were a good part of an empty fetch's garbage. Keeps the
     * group the most recently used, as the lookup does.
     */
    private everyOffsetResolved(): boolean {
      const seen = firstSeenPartitions.of(this.groupId);
      for (const topic in this.topicConfigurations) if (!seen.has(topic)) return false;
      const committed = this.committedOffsets();
      for (const topic of this.topics as string[]) {
        const cached = committed[topic];
        for (const partition of this.memberAssignment[topic] as number[])
          if (invalidOffset(cached[partition])) return false;
      }
      return true;
    }

    private addedPartitionsToResolve(): { topic: string; partitions: { partition: number }[] }[] {
      const seen = firstSeenPartitions.of(this.groupId);
      const added = [];
      // kafkajs loads the metadata before a member joins; without it there is nothing to compare with.
      const metadata: { topicMetadata?: { topic: string; partitionMetadata: unknown[] }[] } | undefined =
        this.cluster.brokerPool?.metadata;
      if (metadata?.topicMetadata === undefined) return [];
      for (const topic of Object.keys(this.topicConfigurations)) {
        if (!seen.has(topic)) {
          const known = metadata.topicMetadata.find((t) => t.topic === topic);
          seen.set(topic, known?.partitionMetadata.length ?? 0);
        }
        const assigned: number[] | undefined = this.memberAssignment[topic];
        if (assigned === undefined || this.topicConfigurations[topic].fromBeginning) continue;
        const first = seen.get(topic)!;
        const cached = this.committedOffsets()[topic];
        const partitions = assigned
          .filter((partition) => partition >= first && isInvalidOffset(cached[partition]))
          .map((partition) => ({ partition }));
        if (partitions.length > 0) added.push({ topic, partitions });
      }
      return added;
    }

    /** The group's committed offset of each partition, or its earliest offset when the group has none. */
    private async startAtEarliest(topics: { topic: string; partitions: { partition: number }[] }[]) {
      const coordinator = await this.getCoordinator();
      const { responses } = await coordinator.offsetFetch({ groupId: this.groupId, topics });
      const uncommitted = (
        responses as { topic: string; partitions: { partition: number; offset: string }[] }[]
      )
        .map(({ topic, partitions }) => ({
          topic,
          fromBeginning: true,
          partitions: partitions
            .filter(({ offset }) => isInvalidOffset(offset))
            .map(({ partition }) => ({ partition })),
        }))
        .filter(({ partitions }) => partitions.length > 0);
      if (uncommitted.length === 0) return;
      const earliest: TopicOffsets = await this.cluster.fetchTopicsOffset(uncommitted);
      for (const started of earliest) {
        logStartWithoutCommit(
          this.groupId,
          started,
          'the earliest offset: a partition added, or its topic created again, while the group ran',
        );
      }
      for (const { topic, partitions } of earliest) {
        const cached = this.committedOffsets()[topic];
        for (const { partition, offset } of partitions) cached[partition] = offset;
      }
    }

    /**
     * The topic was deleted: forgets this member's positions in it, and counts every partition of a topic of that
     * name as added. Returns each assigned partition of the topic with the position forgotten (the next fetch
     * offset; undefined when none was known, as on a second call).
     */
    topicDeleted(topic: string): Map<number, string | undefined> {
      firstSeenPartitions.of(this.groupId).set(topic, 0);
      const forgotten = new Map<number, string | undefined>();
      const assigned: number[] | undefined = this.memberAssignment[topic];
      if (assigned === undefined) return forgotten;
      const cached = this.committedOffsets()[topic];
      const resolved: Record<number, string | undefined> = this.resolvedOffsets[topic];
      for (const partition of assigned) {
        const position = resolved[partition] ?? cached[partition];
        forgotten.set(partition, position === undefined ? undefined : String(position));
      }
      this.committedOffsets()[topic] = {};
      this.resolvedOffsets[topic] = {};
      return forgotten;
    }

    /**
     * `nextOffset(topic, partition).toString()`, the offset each fetch asks for, without the 64-bit Long and its
     * decimal conversion while the resolved offset is already a decimal in canonical form (as resolveOffset and
     * the cache store them); else the released way.
     */
    nextFetchOffset(topic: string, partition: number): string {
      const offset: unknown = this.resolvedOffsets[topic][partition];
      return typeof offset === 'string' && CANONICAL_OFFSET.test(offset)
        ? offset
        : String(this.nextOffset(topic, partition));
    }

    /** The released method returned the cluster's cache, shared by every consumer of the client in this group. */
    committedOffsets(): CommittedOffsets {
      const fields = this as unknown as Record<symbol, CommittedOffsets | undefined>;
      return (fields[committedKey] ??= {});
    }

    resolveOffset(topicPartitionOffset: { topic: string; partition: number; offset: string }): void {
      const partitions: number[] | undefined = this.memberAssignment[topicPartitionOffset.topic];
      if (partitions === undefined || !partitions.includes(topicPartitionOffset.partition)) return;
      super.resolveOffset(topicPartitionOffset);
    }
  };
}

/**
 * The released class keeps its committed-offset cache under a module-private symbol that its other methods read
 * directly: an instance with no group id creates it without touching a cluster, which names the symbol.
 */
function committedOffsetsKey(Released: OffsetManagerClass): symbol {
  const probe = new Released({ memberAssignment: {}, instrumentationEmitter: null });
  const [key, ...others] = Object.getOwnPropertySymbols(probe);
  if (
    key === undefined ||
    others.length > 0 ||
    key.description !== 'private:OffsetManager:committedOffsets'
  ) {
    throw new KafkaClientCompatibilityError(
      KAFKAJS_VERSION,
      MODULE,
      'the committed-offset cache was not found',
    );
  }
  return key;
}
