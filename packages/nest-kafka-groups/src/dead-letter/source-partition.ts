import { type ICustomPartitioner, Partitioners } from '../client/kafkajs.js';

/**
 * The partitioner of the dead-letter and retry-topic writes, Spring's choice (DeadLetterPublishingRecoverer's
 * destination resolver, with `verifyPartition`): a record goes to the partition number of the record it comes
 * from (carried in its `partition` field) when the destination topic has that partition, so the records of a
 * partition, and with them those of a key, stay together and in order along the retry chain whatever the original
 * producer's partitioner was. When the destination has fewer partitions, the default partitioner picks one
 * (murmur2 of the key, round-robin without one).
 */
export const SourcePartitionPartitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => {
    const { partition } = args.message;
    if (partition !== undefined && args.partitionMetadata.some((p) => p.partitionId === partition)) {
      return partition;
    }
    return fallback({ ...args, message: { ...args.message, partition: undefined } });
  };
};
