/**
 * Topics that change under a running group, on a real broker: partitions added (records written to them before the
 * group noticed are handled, not skipped by the `fromBeginning: false` reset), and a topic deleted and created again.
 */
import { describe, expect, test } from '@jest/globals';
import { TEST_CONSUMER_TUNING, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';
import { recording, recordingFeature, recordingSuite } from './support/recording-feature.js';

/** Metadata refreshed every 2 s, so the group notices new partitions within the test's bounds. */
const METADATA_MAX_AGE_MS = 2_000;

describe('topics changed under a running group', () => {
  const { kafka, apps } = recordingSuite();

  async function start(groupId: string, topic: string) {
    const { app } = await startTestApp([recordingFeature(groupId, topic)], {
      fromBeginning: false,
      consumer: { ...TEST_CONSUMER_TUNING, metadataMaxAge: METADATA_MAX_AGE_MS },
      topics: { create: false },
    });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
  }

  const seqs = () => recording.deliveries.map((h) => h.seq).sort((a, b) => a - b);
  const send = (topic: string, seq: number, partition: number) =>
    kafka.produce(topic, [{ key: `k${seq}`, value: JSON.stringify({ seq }), partition }]);

  test('partitions added: what is written to them before the group noticed is handled from their first offset (fromBeginning false)', async () => {
    const topic = uniqueName('grown');
    const groupId = uniqueName('grown');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    await start(groupId, topic);
    await send(topic, 0, 0);
    await waitFor('seq 0 handled', 20_000, () => recording.deliveries.length === 1);

    const admin = await kafka.admin();
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
    // Written at once, before the group's next metadata refresh shows partitions 1 and 2.
    for (let seq = 1; seq <= 6; seq++) await send(topic, seq, 1 + (seq % 2));

    await waitFor('the group rebalanced onto 3 partitions', 20_000, async () => {
      const { groups } = await admin.describeGroups([groupId]);
      return groups[0]?.state === 'Stable' && groups[0].members[0]?.memberAssignment.length > 0
        ? (await kafka.offsets(groupId, topic)).every((o) => o.committed === o.end)
        : false;
    });
    expect(seqs()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    await send(topic, 7, 2);
    await waitFor('seq 7 handled', 20_000, () => recording.deliveries.length === 8);
    expect(seqs()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  }, 90_000);

  test('a topic deleted and created again: the group goes on with the new topic from its first offset', async () => {
    const topic = uniqueName('recreated');
    const groupId = uniqueName('recreated');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    await start(groupId, topic);
    for (let seq = 0; seq < 3; seq++) await send(topic, seq, 0);
    await kafka.waitForCommittedToEnd(groupId, topic);

    const admin = await kafka.admin();
    await admin.deleteTopics({ topics: [topic] });
    await waitFor('the topic gone', 20_000, async () => !(await admin.listTopics()).includes(topic));
    await kafka.createTopic(topic, 1);
    await send(topic, 10, 0);
    await waitFor('seq 10 handled', 30_000, () => recording.deliveries.some((h) => h.seq === 10));
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seqs()).toEqual([0, 1, 2, 10]);
  }, 90_000);
  test('a topic deleted and created again: records written to it at once are all handled', async () => {
    const topic = uniqueName('recreated-busy');
    const groupId = uniqueName('recreated-busy');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    await start(groupId, topic);
    for (let seq = 0; seq < 3; seq++) await send(topic, seq, 0);
    await kafka.waitForCommittedToEnd(groupId, topic);

    const admin = await kafka.admin();
    await admin.deleteTopics({ topics: [topic] });
    await waitFor('the topic gone', 20_000, async () => !(await admin.listTopics()).includes(topic));
    await kafka.createTopic(topic, 1);
    for (let seq = 10; seq < 16; seq++) await send(topic, seq, 0);
    await waitFor('seq 15 handled', 30_000, () => handled.some((h) => h.seq === 15));
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seqs()).toEqual([0, 1, 2, 10, 11, 12, 13, 14, 15]);
  }, 90_000);
});
