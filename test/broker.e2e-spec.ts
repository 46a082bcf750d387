import { afterAll, describe, expect, test } from '@jest/globals';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';

describe('the test broker is a real Kafka', () => {
  const kafka = new KafkaTestClient();
  afterAll(() => kafka.closeAll());

  test('two consumers of one group split a 3-partition topic; every keyed message arrives once, in key order', async () => {
    const topic = uniqueName('broker-proof');
    const groupId = uniqueName('broker-proof-group');
    await kafka.createTopic(topic, 3);

    const received: { consumer: number; partition: number; key: string; seq: number }[] = [];
    const consumers = [0, 1].map((index) => {
      const consumer = kafka.consumer({ groupId });
      return { index, consumer };
    });
    for (const { index, consumer } of consumers) {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          const { seq, key } = JSON.parse(message.value!.toString()) as { seq: number; key: string };
          received.push({ consumer: index, partition, key, seq });
        },
      });
    }
    await kafka.waitForStableGroup(groupId, 2);

    const keys = Array.from({ length: 12 }, (_, i) => `aircraft-${i}`);
    await kafka.produceKeyed(topic, 300, (i) => keys[i % keys.length]);
    await waitFor('300 messages', 30_000, () => received.length >= 300);

    const seqs = received.map((r) => r.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i));

    const partitionsByConsumer = [0, 1].map(
      (c) => new Set(received.filter((r) => r.consumer === c).map((r) => r.partition)),
    );
    expect(partitionsByConsumer[0].size).toBeGreaterThan(0);
    expect(partitionsByConsumer[1].size).toBeGreaterThan(0);
    expect([...partitionsByConsumer[0]].filter((p) => partitionsByConsumer[1].has(p))).toEqual([]);
    expect(partitionsByConsumer[0].size + partitionsByConsumer[1].size).toBe(3);

    for (const key of keys) {
      const order = received.filter((r) => r.key === key).map((r) => r.seq);
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
  });

  test('waitForCommittedToEnd: a partition nothing was written to counts as at its end (nothing to commit there)', async () => {
    const topic = uniqueName('committed-to-end');
    const groupId = uniqueName('committed-to-end-group');
    await kafka.createTopic(topic, 3);
    await kafka.produce(
      topic,
      [0, 1, 2].map((seq) => ({ partition: 0, value: JSON.stringify({ seq }) })),
    );
    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommitInterval: 100, eachMessage: async () => undefined });

    expect(await kafka.waitForCommittedToEnd(groupId, topic, 15_000)).toEqual([
      { partition: 0, committed: 3, end: 3 },
      { partition: 1, committed: -1, end: 0 },
      { partition: 2, committed: -1, end: 0 },
    ]);
    await consumer.disconnect();
  });
});
