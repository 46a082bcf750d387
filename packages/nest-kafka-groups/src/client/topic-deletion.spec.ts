import { Logger } from '@nestjs/common';
import { describe, expect, it, jest } from '@jest/globals';
import { kafkajsInternal } from './kafkajs.js';
import {
  type ConsumerGroupInternals,
  fetchedBeforeDeletion,
  forgetDeletedTopics,
  stampFetched,
  TopicDeletions,
} from './topic-deletion.js';

const { createErrorFromCode } = kafkajsInternal('src/protocol/error');
const UNKNOWN_TOPIC_OR_PARTITION = 3;
const TOPIC = 'orders';

/** A broker whose metadata lists the given topics (kafkajs's metadata() throws for a topic it does not have). */
function broker(knows: boolean, connected = true) {
  return {
    isConnected: () => connected,
    metadata: async () => {
      if (!knows) throw createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION);
      return { topicMetadata: [{ topic: TOPIC }] };
    },
  };
}

/** A coordinator whose offset fetches answer `answers` in turn (the last one from then on). */
function coordinator(answers: string[]) {
  const requests: unknown[] = [];
  return {
    requests,
    offsetFetch: async (request: { topics: { topic: string; partitions: { partition: number }[] }[] }) => {
      requests.push(request);
      const offset = answers[Math.min(requests.length, answers.length) - 1];
      const [{ topic, partitions }] = request.topics;
      return {
        responses: [{ topic, partitions: partitions.map(({ partition }) => ({ partition, offset })) }],
      };
    },
  };
}

/**
 * A member assigned `TOPIC`, whose kafkajs picks `probed` as its connected broker; `assigned` are the partitions
 * (and positions) its OffsetManager forgets.
 */
function group(
  brokers: Record<string, ReturnType<typeof broker>>,
  probed: string,
  assigned = new Map<number, string | undefined>(),
  offsets = coordinator(['-1']),
) {
  const forgotten: string[] = [];
  const internals: ConsumerGroupInternals = {
    groupId: 'g',
    memberId: null,
    topicsSubscribed: [TOPIC],
    cluster: { brokerPool: { brokers, findConnectedBroker: async () => brokers[probed] } },
    offsetManager: {
      topicDeleted: (topic: string) => {
        forgotten.push(topic);
        return new Map(assigned);
      },
      getCoordinator: async () => offsets,
    },
    topicDeletions: new TopicDeletions(),
  };
  return { internals, forgotten };
}

describe('forgetDeletedTopics', () => {
  it('forgets a topic every connected broker answers unknown', async () => {
    const { internals, forgotten } = group(
      { 1: broker(false), 2: broker(false), 3: broker(true, false) },
      '1',
    );
    await forgetDeletedTopics(internals);
    expect(forgotten).toEqual([TOPIC]);
    expect(internals.topicDeletions.since(TOPIC, 0)).toBe(true);
  });

  it('forgets a topic on a one-broker cluster that answers unknown', async () => {
    const { internals, forgotten } = group({ 1: broker(false) }, '1');
    await forgetDeletedTopics(internals);
    expect(forgotten).toEqual([TOPIC]);
  });

  // A broker that has not applied the latest metadata yet (one just restarted in a ZooKeeper-mode cluster, before
  // the controller's UpdateMetadata; one cut off from the KRaft quorum, for a topic created since) answers unknown
  // for a live topic. Forgetting then re-reads the uncommitted partitions from their earliest offset, whatever the
  // group's fromBeginning, and drops the partitions' failures (attempt counts, pending dead letters).
  it('keeps the positions of a live topic that only a lagging broker answers unknown', async () => {
    const { internals, forgotten } = group({ 1: broker(false), 2: broker(true), 3: broker(true) }, '1');
    await forgetDeletedTopics(internals);
    expect(forgotten).toEqual([]);
    expect(internals.topicDeletions.seen).toBe(0);
  });
});

// The broker stops naming a deleted topic a little before its coordinator drops the topic's committed offsets:
// an offset fetch in between would start the topic, created again, at the old topic's committed offset.
describe("forgetDeletedTopics and the deleted topic's committed offsets", () => {
  const QUICK = { polls: 5, intervalMs: 1 };

  it('returns only once the coordinator answers no committed offset for the forgotten partitions', async () => {
    const offsets = coordinator(['3', '3', '-1']);
    const { internals } = group({ 1: broker(false) }, '1', new Map([[0, '3']]), offsets);
    await forgetDeletedTopics(internals, QUICK);
    expect(offsets.requests).toHaveLength(3);
    expect(offsets.requests[0]).toEqual({
      groupId: 'g',
      topics: [{ topic: TOPIC, partitions: [{ partition: 0 }] }],
    });
  });

  it('gives up after its bound and warns with the group, the topic and the offsets still held', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const offsets = coordinator(['3']);
      const { internals } = group({ 1: broker(false) }, '1', new Map([[0, '3']]), offsets);
      await forgetDeletedTopics(internals, QUICK);
      expect(offsets.requests).toHaveLength(QUICK.polls);
      const lines = warn.mock.calls.map(([line]) => String(line));
      expect(lines).toContainEqual(expect.stringMatching(/Group "g".*\[0\]@3 of deleted topic "orders"/));
    } finally {
      warn.mockRestore();
    }
  });

  it('asks nothing for a deleted topic the member had no partition of', async () => {
    const offsets = coordinator(['3']);
    const { internals, forgotten } = group({ 1: broker(false) }, '1', new Map(), offsets);
    await forgetDeletedTopics(internals, QUICK);
    expect(forgotten).toEqual([TOPIC]);
    expect(offsets.requests).toHaveLength(0);
  });
});

describe('batches fetched before a deletion', () => {
  const batch = (topic: string) => ({ topic });

  it('a batch of the deleted topic fetched before the deletion was seen is told apart; one fetched after is not', () => {
    const deletions = new TopicDeletions();
    const before = [batch(TOPIC), batch('payments')];
    stampFetched(before, deletions, deletions.seen);
    deletions.deleted(TOPIC);
    const after = [batch(TOPIC)];
    stampFetched(after, deletions, deletions.seen);

    expect(before.map(fetchedBeforeDeletion)).toEqual([true, false]);
    expect(after.map(fetchedBeforeDeletion)).toEqual([false]);
  });

  it('each deletion of a topic counts: a batch fetched between two is older than the second', () => {
    const deletions = new TopicDeletions();
    deletions.deleted(TOPIC);
    const between = [batch(TOPIC)];
    stampFetched(between, deletions, deletions.seen);
    expect(fetchedBeforeDeletion(between[0])).toBe(false);
    deletions.deleted(TOPIC);
    expect(fetchedBeforeDeletion(between[0])).toBe(true);
  });

  it('a batch no stamped fetch returned is not told apart', () => {
    expect(fetchedBeforeDeletion(batch(TOPIC))).toBe(false);
  });
});
