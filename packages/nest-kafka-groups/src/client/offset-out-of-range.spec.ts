import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { kafkajsInternal } from './kafkajs.js';
import { resetToEarliest } from './offset-out-of-range.js';

type Commit = { groupId: string; memberId: string; groupGenerationId: number; topics: unknown };

function fakeGroup({ next, earliest }: { next: string; earliest: string }) {
  const commits: Commit[] = [];
  const cleared: unknown[] = [];
  const fetched: unknown[] = [];
  const group = {
    groupId: 'billing',
    memberId: 'm-1',
    generationId: 7,
    preferredReadReplicasPerTopicPartition: {} as Record<string, Record<number, number> | undefined>,
    cluster: {
      async fetchTopicsOffset(
        topics: { topic: string; fromBeginning: boolean; partitions: { partition: number }[] }[],
      ) {
        fetched.push(topics);
        return [
          {
            topic: topics[0].topic,
            partitions: [{ partition: topics[0].partitions[0].partition, offset: earliest }],
          },
        ];
      },
    },
    offsetManager: {
      nextOffset: () => ({ toString: () => next }),
      getCoordinator: async () => ({ offsetCommit: async (request: Commit) => void commits.push(request) }),
      clearOffsets: (topicPartition: unknown) => void cleared.push(topicPartition),
    },
  };
  return { group, commits, cleared, fetched };
}

describe('offset out of range: go on from the earliest retained offset', () => {
  let warn: ReturnType<typeof jest.spyOn>;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  test('commits the log start offset (asked with fromBeginning, whatever the group says) and warns with the gap', async () => {
    const { group, commits, cleared, fetched } = fakeGroup({ next: '5', earliest: '10' });
    await resetToEarliest(group, { topic: 'orders', partition: 2 });
    expect(fetched).toEqual([[{ topic: 'orders', fromBeginning: true, partitions: [{ partition: 2 }] }]]);
    expect(commits).toEqual([
      {
        groupId: 'billing',
        memberId: 'm-1',
        groupGenerationId: 7,
        topics: [{ topic: 'orders', partitions: [{ partition: 2, offset: '10' }] }],
      },
    ]);
    expect(cleared).toEqual([{ topic: 'orders', partition: 2 }]);
    expect(String(warn.mock.calls[0][0])).toMatch(
      /Group "billing": offset 5 of orders\[2\] is out of range; going on from the earliest retained offset 10: offsets 5 to 9 \(5\) were deleted by retention/,
    );
  });

  test('a log truncated below the offset: goes back to the earliest and says messages are processed again', async () => {
    const { group, commits } = fakeGroup({ next: '50', earliest: '0' });
    await resetToEarliest(group, { topic: 't', partition: 0 });
    expect((commits[0].topics as { partitions: { offset: string }[] }[])[0].partitions[0].offset).toBe('0');
    expect(String(warn.mock.calls[0][0])).toMatch(
      /truncated below it: messages from there on are processed again/,
    );
  });

  test("is installed on the library's kafkajs instance; a follower's out-of-range still retries the leader first", async () => {
    const ConsumerGroup = kafkajsInternal('src/consumer/consumerGroup.js') as {
      prototype: { recoverFromOffsetOutOfRange(this: unknown, error: unknown): Promise<void> };
    };
    const { group, commits } = fakeGroup({ next: '5', earliest: '10' });
    group.preferredReadReplicasPerTopicPartition.orders = { 2: 3 };
    const withLogger = Object.assign(group, { logger: { info: () => undefined } });
    await ConsumerGroup.prototype.recoverFromOffsetOutOfRange.call(withLogger, {
      topic: 'orders',
      partition: 2,
    });
    expect(commits).toEqual([]);
    expect(group.preferredReadReplicasPerTopicPartition.orders).toEqual({});

    await ConsumerGroup.prototype.recoverFromOffsetOutOfRange.call(withLogger, {
      topic: 'orders',
      partition: 2,
    });
    expect(commits).toHaveLength(1);
  });
});
