import type { CarriedFix } from '../kafkajs-loader.js';
import { type ConsumerGroupInternals, forgetDeletedTopics } from '../topic-deletion.js';

type ConsumerGroupClass = new (options: any) => any;

/** kafkajs 2.2.4's STALE_METADATA_ERRORS (consumerGroup.js): what a fetch answers when a partition's leader moved. */
const STALE_METADATA_ERRORS = new Set([
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'UNKNOWN_TOPIC_OR_PARTITION',
]);

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
 * (released behaviour). Other fetch errors are handled as released. A refresh that finds a subscribed topic gone
 * makes the member forget its positions in it (topic-deletion.ts) before the error goes on as released.
 */
export const consumerGroupFix: CarriedFix = {
  module: 'src/consumer/consumerGroup.js',
  sha256: 'f3e461738585a8dc6574c647123a18afc732f81cdee4f9f7bb62e4aa1dffbfbb',
  create: (_require, released) => createConsumerGroup(released() as ConsumerGroupClass),
};

export function createConsumerGroup(Released: ConsumerGroupClass): ConsumerGroupClass {
  return class ConsumerGroup extends Released {
    async recoverFromFetch(error: { type?: string; name?: string; message?: string }): Promise<void> {
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
