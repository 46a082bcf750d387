import { describe, expect, test } from '@jest/globals';
import kafkajs from 'kafkajs';
import type { PartitionAssigner } from '../client/kafkajs.js';
import {
  INTEROP_ASSIGNERS,
  KafkajsRoundRobinAssigner,
  RangeAssigner,
  RoundRobinInteropAssigner,
} from './interop.assigners.js';
import { encodeSubscription } from './member-subscriptions.js';

const { AssignerProtocol } = kafkajs;

const topicMetadata = (topic: string, count: number) => ({
  topic,
  partitionMetadata: Array.from({ length: count }, (_, partitionId) => ({ partitionId })),
});

/** A stand-in for kafkajs's cluster: partition counts per topic, recording which topics were fetched. */
function fakeCluster(partitions: Record<string, number>) {
  const fetched: string[][] = [];
  const cluster = {
    async metadata({ topics }: { topics: string[] }) {
      fetched.push(topics);
      return { topicMetadata: topics.map((topic) => topicMetadata(topic, partitions[topic] ?? 0)) };
    },
  };
  return { cluster, fetched };
}

function build(assigner: PartitionAssigner, partitions: Record<string, number>) {
  const { cluster, fetched } = fakeCluster(partitions);
  const instance = assigner({
    cluster,
    groupId: 'g',
    logger: undefined,
  } as unknown as Parameters<PartitionAssigner>[0]);
  return { instance, fetched };
}

const member = (memberId: string, ...topics: string[]) => ({
  memberId,
  memberMetadata: encodeSubscription(topics),
});

async function assign(
  assigner: PartitionAssigner,
  partitions: Record<string, number>,
  members: ReturnType<typeof member>[],
) {
  const { instance, fetched } = build(assigner, partitions);
  const result = await instance.assign({ members, topics: ['t0'] });
  const decoded = Object.fromEntries(
    result.map(({ memberId, memberAssignment }) => [
      memberId,
      AssignerProtocol.MemberAssignment.decode(memberAssignment)!.assignment,
    ]),
  );
  return { result, decoded, fetched };
}

describe('interop assigners', () => {
  test('protocol names, in the advertised order', () => {
    const names = INTEROP_ASSIGNERS.map((a) => build(a, {}).instance.name);
    expect(names).toEqual(['range', 'roundrobin', 'RoundRobinAssigner']);
  });

  test('protocol() advertises a version 0 subscription of the topics', () => {
    const { instance } = build(RangeAssigner, {});
    const state = instance.protocol({ topics: ['a', 'b'] });
    expect(state.name).toBe('range');
    expect(AssignerProtocol.MemberMetadata.decode(state.metadata)).toEqual({
      version: 0,
      topics: ['a', 'b'],
      userData: Buffer.alloc(0),
    });
  });

  test('range: fetches metadata for topics only other members consume, members in id order', async () => {
    const { decoded, fetched, result } = await assign(RangeAssigner, { t0: 3, t1: 3 }, [
      member('C1', 't0', 't1'),
      member('C0', 't0', 't1'),
    ]);
    expect(fetched).toEqual([['t0', 't1']]);
    expect(result.map((r) => r.memberId)).toEqual(['C0', 'C1']);
    expect(decoded).toEqual({ C0: { t0: [0, 1], t1: [0, 1] }, C1: { t0: [2], t1: [2] } });
  });

  test.each([
    ['roundrobin', RoundRobinInteropAssigner],
    ['RoundRobinAssigner', KafkajsRoundRobinAssigner],
  ])('%s: round robin with an idle member that still gets an entry', async (_name, assigner) => {
    const { decoded } = await assign(assigner, { t0: 2 }, [
      member('c', 't0'),
      member('a', 't0'),
      member('b', 't0'),
    ]);
    expect(decoded).toEqual({ a: { t0: [0] }, b: { t0: [1] }, c: {} });
  });

  test('a topic without metadata (unknown to the broker) is skipped, like Java does; the others are assigned', async () => {
    const known: Record<string, number> = { t0: 2 };
    const fetched: string[][] = [];
    const cluster = {
      async metadata({ topics }: { topics: string[] }) {
        fetched.push(topics);
        // kafkajs fails the whole metadata request when one topic is unknown.
        if (topics.some((t) => !(t in known))) {
          throw Object.assign(new Error('This server does not host this topic-partition'), {
            type: 'UNKNOWN_TOPIC_OR_PARTITION',
          });
        }
        return { topicMetadata: topics.map((topic) => topicMetadata(topic, known[topic])) };
      },
    };
    const instance = RangeAssigner({
      cluster,
      groupId: 'g',
      logger: undefined,
    } as unknown as Parameters<PartitionAssigner>[0]);
    const result = await instance.assign({
      members: [member('a', 't0'), member('b', 't0', 'missing')],
      topics: ['t0'],
    });
    const decoded = Object.fromEntries(
      result.map(({ memberId, memberAssignment }) => [
        memberId,
        AssignerProtocol.MemberAssignment.decode(memberAssignment)!.assignment,
      ]),
    );
    expect(decoded).toEqual({ a: { t0: [0] }, b: { t0: [1] } });
    expect(fetched).toEqual([['missing', 't0'], ['missing'], ['t0']]);
  });

  test('other metadata errors still fail the assignment (kafkajs retries the join), without a request per topic', async () => {
    const fetched: string[][] = [];
    const cluster = {
      async metadata({ topics }: { topics: string[] }) {
        fetched.push(topics);
        throw Object.assign(new Error('broker gone'), { type: 'NETWORK_EXCEPTION' });
      },
    };
    const instance = RangeAssigner({
      cluster,
      groupId: 'g',
      logger: undefined,
    } as unknown as Parameters<PartitionAssigner>[0]);
    await expect(
      instance.assign({ members: [member('a', 't0'), member('b', 't1')], topics: ['t0'] }),
    ).rejects.toThrow('broker gone');
    expect(fetched).toEqual([['t0', 't1']]);
  });

  test('an error of a per-topic request that is not about the topic fails the assignment', async () => {
    const cluster = {
      async metadata({ topics }: { topics: string[] }) {
        if (topics.length > 1)
          throw Object.assign(new Error('unknown topic'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
        throw Object.assign(new Error('broker gone'), { type: 'NETWORK_EXCEPTION' });
      },
    };
    const instance = RangeAssigner({
      cluster,
      groupId: 'g',
      logger: undefined,
    } as unknown as Parameters<PartitionAssigner>[0]);
    await expect(
      instance.assign({ members: [member('a', 't0'), member('b', 'missing')], topics: ['t0'] }),
    ).rejects.toThrow('broker gone');
  });

  test('an error whose cause chain loops is judged in bounded steps (an ordinary failure)', async () => {
    const looping: Error & { type?: string; originalError?: unknown } = Object.assign(new Error('loop'), {
      type: 'NETWORK_EXCEPTION',
    });
    looping.originalError = looping;
    const cluster = {
      async metadata() {
        throw looping;
      },
    };
    const instance = RangeAssigner({
      cluster,
      groupId: 'g',
      logger: undefined,
    } as unknown as Parameters<PartitionAssigner>[0]);
    await expect(instance.assign({ members: [member('a', 't0')], topics: ['t0'] })).rejects.toBe(looping);
  });
});
