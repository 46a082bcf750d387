import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Kafka, KafkaLogLevel, KafkaTestClient, testBrokers, uniqueName } from 'nest-kafka-groups/testing';

/**
 * Review of the idempotent producer's per-partition order (client/fixes/partition-order.ts): a send() waits for the
 * earlier send() calls that have a batch for one of its partitions. A Produce request carries every partition of a
 * send() led by one broker, and kafkajs reads its answer as a whole (the first partition error fails it all), so a
 * partition the broker appended shares the fate of a partition it refused in the same request. Real broker: a topic
 * deleted after the producer loaded its metadata is refused UNKNOWN_TOPIC_OR_PARTITION, then has no metadata
 * (both retriable), until the send()'s retries run out.
 */
describe('idempotent producer: a partition held by another topic refused in the same request (review)', () => {
  const kafka = new KafkaTestClient();

  beforeAll(async () => {
    await kafka.admin();
  });

  afterAll(async () => {
    await kafka.closeAll();
  });

  it('a send() to a healthy partition does not wait out the retries of an earlier send() whose other topic the broker refuses', async () => {
    const healthy = uniqueName('order-healthy');
    const refused = uniqueName('order-deleted');
    await kafka.createTopic(healthy, 1);
    await kafka.createTopic(refused, 1);
    const producer = new Kafka({
      clientId: 'producer-partition-order-spec',
      brokers: testBrokers(),
      logLevel: KafkaLogLevel.NOTHING,
    }).producer({
      idempotent: true,
      maxInFlightRequests: 5,
      allowAutoTopicCreation: false,
      // About 10 s of retries for the refused topic.
      retry: { retries: 5, initialRetryTime: 2_000, maxRetryTime: 2_000, factor: 0 },
    });
    await producer.connect();
    try {
      // The producer knows both topics; then one is deleted.
      await producer.send({ topic: healthy, acks: -1, messages: [{ value: 'first' }] });
      await producer.send({ topic: refused, acks: -1, messages: [{ value: 'first' }] });
      const admin = await kafka.admin();
      await admin.deleteTopics({ topics: [refused] });
      const started = Date.now();
      let earlierSettled: number | undefined;
      const earlier = producer
        .sendBatch({
          acks: -1,
          topicMessages: [
            { topic: healthy, messages: [{ value: 'a' }] },
            { topic: refused, messages: [{ value: 'x' }] },
          ],
        })
        .then(
          () => 'acknowledged',
          (error: Error) => `failed: ${error.name} ${error.message}`,
        )
        .finally(() => (earlierSettled = Date.now() - started));
      // The broker appended `a` (its first request answered: `a` written, `x` refused).
      const deadline = Date.now() + 10_000;
      while (Number((await admin.fetchTopicOffsets(healthy))[0].high) < 2 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));

      await producer.send({ topic: healthy, acks: -1, messages: [{ value: 'b' }] });
      const laterSettled = Date.now() - started;

      expect(await earlier).toMatch(/^failed: KafkaJSNumberOfRetriesExceeded/);
      // The healthy partition's send() went out while the refused topic's retries went on (it had nothing to wait
      // for: `a` was in the log), not after they were exhausted.
      expect({
        laterBeforeEarlier: earlierSettled === undefined || laterSettled < earlierSettled,
        laterMs: laterSettled,
        earlierMs: earlierSettled,
      }).toEqual({ laterBeforeEarlier: true, laterMs: expect.any(Number), earlierMs: expect.any(Number) });
      const [{ high }] = await admin.fetchTopicOffsets(healthy);
      const values = (await kafka.readMessages(healthy, Number(high))).map((m) => String(m.value));
      expect(values).toEqual(['first', 'a', 'b']);
    } finally {
      await producer.disconnect();
    }
  }, 60_000);
});
