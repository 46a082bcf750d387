import { describe, expect, test } from '@jest/globals';
import { uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';
import {
  recording,
  recordingFeature,
  recordingSuite,
  SecondRecordingController,
} from './support/recording-feature.js';

const { deliveries } = recording;

function processedOnce(group: string, count: number) {
  const seqs = deliveries
    .filter((d) => d.group === group)
    .map((d) => d.seq)
    .sort((a, b) => a - b);
  expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i));
}

describe('consumer groups served by KafkaGroupsServer', () => {
  const { kafka, apps } = recordingSuite();

  test('two groups on one 3-partition topic each process all 300 messages once', async () => {
    const topic = uniqueName('two-groups');
    const [groupA, groupB] = [uniqueName('group-a'), uniqueName('group-b')];
    await kafka.createTopic(topic, 3);
    const { app } = await startTestApp([
      recordingFeature(groupA, topic),
      recordingFeature(groupB, topic, { controllers: [SecondRecordingController] }),
    ]);
    apps.push(app);
    await kafka.waitForStableGroup(groupA, 1);
    await kafka.waitForStableGroup(groupB, 1);

    await kafka.produceKeyed(topic, 300, (i) => `k${i % 10}`);
    await waitFor('both groups done', 30_000, () => deliveries.length >= 600);
    await kafka.waitForCommittedToEnd(groupA, topic);
    await kafka.waitForCommittedToEnd(groupB, topic);
    processedOnce(groupA, 300);
    processedOnce(groupB, 300);
  });

  test('concurrency 2 on a 2-partition topic: each member owns one partition, everything processed once', async () => {
    const topic = uniqueName('two-members');
    const groupId = uniqueName('members');
    await kafka.createTopic(topic, 2);
    const { app, server } = await startTestApp([recordingFeature(groupId, topic, { concurrency: 2 })]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 2);
    const members = server.groups[0].members;
    await waitFor('both members assigned', 10_000, () =>
      members.every((m) => (m.assignment[topic] ?? []).length === 1),
    );

    await kafka.produceKeyed(topic, 200, (i) => `k${i % 7}`);
    await waitFor('200 messages', 30_000, () => deliveries.length >= 200);
    await kafka.waitForCommittedToEnd(groupId, topic);
    processedOnce(groupId, 200);
    expect(
      members
        .map((m) => m.assignment[topic])
        .flat()
        .sort(),
    ).toEqual([0, 1]);
    for (const member of members) expect(member.counts.processed).toBeGreaterThan(0);
  });

  test('three members on two partitions: one idles and the group still finishes', async () => {
    const topic = uniqueName('idle-member');
    const groupId = uniqueName('idle');
    await kafka.createTopic(topic, 2);
    const { app, server } = await startTestApp([recordingFeature(groupId, topic, { concurrency: 3 })]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 3);
    const members = server.groups[0].members;
    await waitFor(
      'assignment settled',
      10_000,
      () =>
        members.filter((m) => m.state === 'joined').length === 3 &&
        members
          .map((m) => (m.assignment[topic] ?? []).length)
          .sort()
          .join() === '0,1,1',
    );

    await kafka.produceKeyed(topic, 100, (i) => `k${i % 5}`);
    await waitFor('100 messages', 30_000, () => deliveries.length >= 100);
    await kafka.waitForCommittedToEnd(groupId, topic);
    processedOnce(groupId, 100);
    expect(members.filter((m) => m.counts.processed === 0)).toHaveLength(1);
  });

  test('per-key order holds within partitions while partitions run concurrently', async () => {
    const topic = uniqueName('order');
    const groupId = uniqueName('order');
    await kafka.createTopic(topic, 4);
    let inFlight = 0;
    let maxInFlight = 0;
    recording.behaviour = async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
    };
    const { app } = await startTestApp([
      recordingFeature(groupId, topic, { partitionsConsumedConcurrently: 4 }),
    ]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);

    await kafka.produceKeyed(topic, 400, (i) => `k${i % 16}`);
    await waitFor('400 messages', 60_000, () => deliveries.length >= 400);
    await kafka.waitForCommittedToEnd(groupId, topic);
    processedOnce(groupId, 400);
    for (let k = 0; k < 16; k++) {
      const seqs = deliveries.filter((d) => d.key === `k${k}`).map((d) => d.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    expect(maxInFlight).toBeGreaterThan(1);
  });

  test('a handler failing on first delivery: redelivered and processed, offset never passes it, others flow', async () => {
    const topic = uniqueName('redeliver');
    const groupId = uniqueName('redeliver');
    await kafka.createTopic(topic, 3);
    const failOnce = 5;
    let failedAt: { partition: number; offset: string } | undefined;
    let releaseFailure = false;
    recording.behaviour = (payload, ctx) => {
      if (payload.seq === failOnce && (!releaseFailure || ctx.attempt === 1)) {
        failedAt = { partition: ctx.partition, offset: ctx.offset };
        throw new Error(`boom on seq ${payload.seq}`);
      }
    };
    const { app } = await startTestApp([recordingFeature(groupId, topic)], {
      retry: { attempts: 100, initialDelayMs: 300, multiplier: 1, maxDelayMs: 300 },
    });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 90, (i) => `k${i % 9}`);

    // While seq 5 keeps failing, the other partitions finish and its own partition's commit stays at or below it.
    await waitFor('other partitions done while seq 5 is retried', 30_000, async () => {
      if (!failedAt || deliveries.filter((d) => d.seq === failOnce).length < 3) return false;
      const offsets = await kafka.offsets(groupId, topic);
      return offsets.filter((o) => o.partition !== failedAt!.partition).every((o) => o.committed === o.end);
    });
    const stuck = (await kafka.offsets(groupId, topic)).find((o) => o.partition === failedAt!.partition)!;
    expect(stuck.committed).toBeLessThanOrEqual(Number(failedAt!.offset));
    expect(deliveries.filter((d) => d.seq === failOnce).length).toBeGreaterThanOrEqual(3);

    releaseFailure = true;
    await kafka.waitForCommittedToEnd(groupId, topic);
    const succeeded = deliveries.filter((d) => d.seq !== failOnce || d.attempt > 1);
    const seqs = [...new Set(deliveries.map((d) => d.seq))].sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 90 }, (_, i) => i));
    expect(succeeded.filter((d) => d.seq !== failOnce)).toHaveLength(89);
  });

  test('a member that cannot start (its topic is missing) is recreated with backoff and consumes once it exists', async () => {
    const topic = uniqueName('late-topic');
    const groupId = uniqueName('late-topic');
    const { app, server } = await startTestApp([recordingFeature(groupId, topic)], {
      clientRetry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
      // Neither created nor checked at start-up: the member itself meets the missing topic.
      topics: { create: false, check: false },
    });
    apps.push(app);
    const member = server.groups[0].members[0];
    await waitFor('the member to fail to start', 20_000, () => member.state === 'crashed');
    // The broker's answer for a topic it does not have, kept for /health and /kafka/groups.
    expect(member.lastError).toBe('This server does not host this topic-partition');

    await kafka.createTopic(topic, 2);
    await kafka.waitForStableGroup(groupId, 1, 30_000);
    await kafka.produceKeyed(topic, 20, (i) => `k${i % 4}`);
    await kafka.waitForCommittedToEnd(groupId, topic);
    processedOnce(groupId, 20);
    expect(member.state).toBe('joined');
  });

  test('a member joining while a slow handler runs: nothing is processed twice', async () => {
    const topic = uniqueName('join-slow');
    const groupId = uniqueName('join-slow');
    await kafka.createTopic(topic, 2);
    let slowStarted = false;
    recording.behaviour = async (payload) => {
      if (payload.seq === 3) {
        slowStarted = true;
        await new Promise((resolve) => setTimeout(resolve, 3_000));
      }
    };
    const first = await startTestApp([recordingFeature(groupId, topic)]);
    apps.push(first.app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 60, (i) => `k${i % 6}`);
    await waitFor('slow handler running', 20_000, () => slowStarted);

    const second = await startTestApp([recordingFeature(groupId, topic)]);
    apps.push(second.app);
    await kafka.waitForStableGroup(groupId, 2);
    await kafka.produceKeyed(
      topic,
      60,
      (i) => `k${i % 6}`,
      () => ({ batch: 2 }),
    );
    await waitFor('120 deliveries', 30_000, () => deliveries.length >= 120);
    await kafka.waitForCommittedToEnd(groupId, topic);

    const seen = new Map<string, number>();
    for (const d of deliveries)
      seen.set(`${d.partition}@${d.offset}`, (seen.get(`${d.partition}@${d.offset}`) ?? 0) + 1);
    expect([...seen.values()].filter((n) => n > 1)).toEqual([]);
    expect(seen.size).toBe(120);
    expect(second.server.groups[0].members[0].counts.processed).toBeGreaterThan(0);
  });
});
