import { KafkaClientCompatibilityError } from '../../errors/kafka-client-compatibility.error.js';
import { type CarriedFix, KAFKAJS_VERSION } from '../kafkajs-loader.js';

type OffsetManagerClass = new (options: any) => any;
type CommittedOffsets = Record<string, Record<number, string>>;

const MODULE = 'src/consumer/offsetManager/index.js';

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
 */
export const offsetManagerFix: CarriedFix = {
  module: MODULE,
  sha256: 'bd1041968ae322324ebf64d2569308db19d24f70ee5dbb72c964b43bfe85c00e',
  create: (_require, released) => createOffsetManager(released() as OffsetManagerClass),
};

export function createOffsetManager(Released: OffsetManagerClass): OffsetManagerClass {
  const committedKey = committedOffsetsKey(Released);

  return class OffsetManager extends Released {
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
