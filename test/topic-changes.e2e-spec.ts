/**
 * Topics that change under a running group, on a real broker: partitions added (records written to them before the
 * group noticed are handled, not skipped by the `fromBeginning: false` reset), and a topic deleted and created again.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { ConsoleLogger, type INestApplication } from '@nestjs/common';
import { KafkaGroups } from 'nest-kafka-groups';
import { KafkaTestClient, TEST_CONSUMER_TUNING, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { ensureBroker, localSettings, stopBroker } from '../scripts/kafka-local-lib.mjs';
import { javaAvailable } from './support/local-machine.js';
import { prestartedCluster } from './support/prestarted-cluster.js';
import { startTestApp } from './support/nest-test-app.js';
import { recording, recordingFeature, recordingSuite, resetRecording } from './support/recording-feature.js';

/** Metadata refreshed every 2 s, so the group notices new partitions within the test's bounds. */
const METADATA_MAX_AGE_MS = 2_000;

describe('topics changed under a running group', () => {
  const { kafka, apps } = recordingSuite();
  let warnings: jest.SpiedFunction<ConsoleLogger['warn']>;
  beforeEach(() => {
    warnings = jest.spyOn(ConsoleLogger.prototype, 'warn');
  });
  afterEach(() => warnings.mockRestore());

  async function start(groupId: string, topic: string): Promise<KafkaGroups> {
    const { app } = await startTestApp([recordingFeature(groupId, topic)], {
      fromBeginning: false,
      consumer: { ...TEST_CONSUMER_TUNING, metadataMaxAge: METADATA_MAX_AGE_MS },
      topics: { create: false },
    });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    return app.get(KafkaGroups);
  }

  const noticedDeletion = (topic: string) =>
    waitFor('the member noticed the deletion', 20_000, () =>
      warnings.mock.calls.some(([line]) => String(line).includes(`topic "${topic}" was deleted`)),
    );

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
    // The case the library covers: the member saw the topic missing before it exists again (kafkajs has no topic
    // ids: a deletion and creation that no fetch of the member sees in between is the documented limit).
    await noticedDeletion(topic);
    await kafka.createTopic(topic, 1);
    for (let seq = 10; seq < 16; seq++) await send(topic, seq, 0);
    await waitFor('seq 15 handled', 30_000, () => recording.deliveries.some((h) => h.seq === 15));
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seqs()).toEqual([0, 1, 2, 10, 11, 12, 13, 14, 15]);
  }, 90_000);

  test('a topic deleted and created again while the group is paused, written before the resume: all handled', async () => {
    const topic = uniqueName('recreated-paused');
    const groupId = uniqueName('recreated-paused');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const groups = await start(groupId, topic);
    for (let seq = 0; seq < 3; seq++) await send(topic, seq, 0);
    await kafka.waitForCommittedToEnd(groupId, topic);

    // Paused, the member fetches nothing, so the new topic holds more records than the old position (3) when
    // it fetches again: only the positions forgotten at the deletion keep seq 10-12 from being skipped.
    groups.pause(groupId);
    const admin = await kafka.admin();
    await admin.deleteTopics({ topics: [topic] });
    await noticedDeletion(topic);
    await kafka.createTopic(topic, 1);
    for (let seq = 10; seq < 16; seq++) await send(topic, seq, 0);
    groups.resume(groupId);
    await waitFor('seq 15 handled', 30_000, () => recording.deliveries.some((h) => h.seq === 15));
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seqs()).toEqual([0, 1, 2, 10, 11, 12, 13, 14, 15]);
  }, 90_000);
});

/**
 * Two brokers: the member fetches each broker's partitions in a fetcher of its own, so one broker's fetcher can see
 * a topic deleted (and the member forget its positions) while a batch of the same topic fetched from the other
 * broker is still in its handler. The spec starts its own cluster on KAFKA_CLUSTER_PORT+20 (19712-19713, controllers
 * 19714-19715), or reuses one that answers there, and stops the one it started (or `.ci/run` started ahead for it:
 * support/prestarted-cluster.ts).
 */
const clusterSuite = javaAvailable() ? describe : describe.skip;

clusterSuite('a topic deleted under a running batch of another broker', () => {
  const port = Number(process.env.KAFKA_CLUSTER_PORT ?? 19692) + 20;
  const settings = localSettings({
    ...process.env,
    KAFKA_BROKERS: '',
    KAFKA_NODES: '2',
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(port + 2),
  });
  const brokers = settings.localAddress.split(',');
  let kafka: KafkaTestClient;
  let started = false;
  const apps: INestApplication[] = [];
  let warnings: jest.SpiedFunction<ConsoleLogger['warn']>;

  beforeAll(async () => {
    started =
      (await prestartedCluster(port, settings.localAddress)) || (await ensureBroker(settings)).started;
    kafka = new KafkaTestClient({ brokers });
  }, 240_000);
  beforeEach(() => {
    warnings = jest.spyOn(ConsoleLogger.prototype, 'warn');
  });
  afterEach(async () => {
    warnings.mockRestore();
    while (apps.length > 0) await apps.pop()!.close();
    resetRecording();
  });
  afterAll(async () => {
    await kafka?.closeAll();
    if (started) await stopBroker({}, settings);
  }, 60_000);

  /** Partition 0 led by node 1, partition 1 by node 2 (one replica each): two fetchers of the member. */
  async function createSplitTopic(topic: string): Promise<void> {
    const admin = await kafka.admin();
    await admin.createTopics({
      waitForLeaders: false,
      topics: [
        {
          topic,
          replicaAssignment: [
            { partition: 0, replicas: [1] },
            { partition: 1, replicas: [2] },
          ],
        },
      ],
    });
    await waitFor(`leaders of ${topic} on nodes 1 and 2`, 30_000, async () => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const leaders = (topics[0]?.partitions ?? []).map((p) => [p.partitionId, p.leader]).sort();
      return (
        JSON.stringify(leaders) ===
        JSON.stringify([
          [0, 1],
          [1, 2],
        ])
      );
    });
  }

  test('the batch ends after the topic exists again: its old offset does not move the new topic past its first records', async () => {
    const topic = uniqueName('recreated-race');
    const groupId = uniqueName('recreated-race');
    await createSplitTopic(topic);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const logs = jest.spyOn(ConsoleLogger.prototype, 'log');
    const { app } = await startTestApp([recordingFeature(groupId, topic)], {
      brokers,
      fromBeginning: false,
      consumer: { ...TEST_CONSUMER_TUNING, metadataMaxAge: METADATA_MAX_AGE_MS },
      topics: { create: false },
    });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    // Produced before the member resolved its start (latest, fromBeginning false), seq 0-4 would be skipped.
    await waitFor(`the member's start on ${topic}[0]`, 20_000, () =>
      logs.mock.calls.some(([line]) =>
        String(line).includes(`Group "${groupId}" has no committed offset for ${topic}[0]`),
      ),
    );
    logs.mockRestore();

    // The old topic's partition 0 holds seq 0-4; the handler holds seq 4 (offset 4) until released.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    recording.behaviour = async ({ seq }) => {
      if (seq === 4) await held;
    };
    await kafka.produce(
      topic,
      Array.from({ length: 5 }, (_, seq) => ({
        key: `k${seq}`,
        value: JSON.stringify({ seq }),
        partition: 0,
      })),
    );
    await waitFor('seq 4 in its handler', 20_000, () => recording.deliveries.some((d) => d.seq === 4));

    // Partition 1's fetcher (node 2) sees the topic gone and the member forgets its positions in it, while the batch
    // of partition 0 (node 1) still runs.
    const admin = await kafka.admin();
    await admin.deleteTopics({ topics: [topic] });
    await waitFor('the member noticed the deletion', 20_000, () =>
      warnings.mock.calls.some(([line]) => String(line).includes(`topic "${topic}" was deleted`)),
    );
    await createSplitTopic(topic);
    await kafka.produce(
      topic,
      Array.from({ length: 6 }, (_, i) => ({
        key: `k${10 + i}`,
        value: JSON.stringify({ seq: 10 + i }),
        partition: 0,
      })),
    );
    release();

    await waitFor('seq 15 handled', 30_000, () => recording.deliveries.some((d) => d.seq === 15));
    await waitFor(`${topic}[0] committed to its end`, 30_000, async () => {
      const [p0] = await kafka.offsets(groupId, topic);
      return p0.committed === p0.end;
    });
    const handled = [...new Set(recording.deliveries.map((d) => d.seq))].sort((a, b) => a - b);
    expect(handled).toEqual([0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15]);
  }, 120_000);
});
