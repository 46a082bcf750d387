import { describe, expect, test } from '@jest/globals';
import { Partitioners } from '../client/kafkajs.js';
import { SourcePartitionPartitioner } from './source-partition.js';

const metadata = (count: number) =>
  Array.from({ length: count }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
    partitionErrorCode: 0,
  }));

describe('SourcePartitionPartitioner', () => {
  const keyed = (key: string, count: number) =>
    Partitioners.DefaultPartitioner()({
      topic: 't',
      partitionMetadata: metadata(count),
      message: { key, value: null },
    });
  // A key the default partitioner puts elsewhere than partition 2 of three.
  const key = Array.from({ length: 50 }, (_, i) => `k${i}`).find((k) => keyed(k, 3) !== 2)!;

  test("the source partition number when the destination has it, whatever the key's hash", () => {
    const partitioner = SourcePartitionPartitioner();
    expect(
      partitioner({
        topic: 't',
        partitionMetadata: metadata(3),
        message: { key, value: null, partition: 2 },
      }),
    ).toBe(2);
    expect(
      partitioner({
        topic: 't',
        partitionMetadata: metadata(3),
        message: { key: null, value: null, partition: 0 },
      }),
    ).toBe(0);
  });

  test("the key's partition (murmur2, as Java's) when the destination lacks the source partition", () => {
    const partitioner = SourcePartitionPartitioner();
    expect(
      partitioner({
        topic: 't',
        partitionMetadata: metadata(2),
        message: { key, value: null, partition: 2 },
      }),
    ).toBe(keyed(key, 2));
  });

  test('round-robin over the partitions when it lacks it and there is no key', () => {
    const partitioner = SourcePartitionPartitioner();
    const picked = Array.from({ length: 4 }, () =>
      partitioner({
        topic: 't',
        partitionMetadata: metadata(2),
        message: { key: null, value: null, partition: 5 },
      }),
    );
    expect(new Set(picked)).toEqual(new Set([0, 1]));
  });
});
