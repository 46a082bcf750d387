import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Kafka, KafkaLogLevel, KafkaTestClient, testBrokers, uniqueName } from 'nest-kafka-groups/testing';

/**
 * A Produce request carries every partition of a send() led by one broker. kafkajs 2.2.4 read its answer as a whole
 * (the first partition error failed it all), so a partition the broker appended shared the fate of a partition it
 * refused in the same request; with the idempotent producer's per-partition order (client/fixes/partition-order.ts)
 * every later send() to the appended partition then waited for the refused one. The carried sendMessages reads the
 * answer per partition (RELIABILITY finding 10). Real broker: a topic deleted after the producer loaded its metadata
 * is refused UNKNOWN_TOPIC_OR_PARTITION, then has no metadata (both retriable), until the send()'s retries run out;
 * a record over the topic's max.message.bytes is refused MESSAGE_TOO_LARGE (not retriable).
 */
describe('idempotent producer: a Produce answer read per partition', () => {
  const kafka = new KafkaTestClient();

  beforeAll(async () => {
    await kafka.admin();
  });

  afterAll(async () => {
    await kafka.closeAll();
  });

  const producerOf = (retry: { retries: number; initialRetryTime: number; maxRetryTime: number }) =>
    new Kafka({
      clientId: 'producer-partition-order-spec',
      brokers: testBrokers(),
      logLevel: KafkaLogLevel.NOTHING,
    }).producer({
      idempotent: true,
      maxInFlightRequests: 5,
      allowAutoTopicCreation: false,
      retry: { ...retry, factor: 0 },
    });

  const valuesOf = async (topic: string): Promise<string[]> => {
    const [{ high }] = await (await kafka.admin()).fetchTopicOffsets(topic);
    return (await kafka.readMessages(topic, Number(high))).map((m) => String(m.value));
  };

  it('a send() to a healthy partition does not wait out the retries of an earlier send() whose other topic the broker refuses', async () => {
    const healthy = uniqueName('order-healthy');
    const refused = uniqueName('order-deleted');
    await kafka.createTopic(healthy, 1);
    await kafka.createTopic(refused, 1);
    // About 10 s of retries for the refused topic.
    const producer = producerOf({ retries: 5, initialRetryTime: 2_000, maxRetryTime: 2_000 });
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

      // The send() fails with the refused partition named; nothing of it went to the healthy topic twice.
      expect(await earlier).toMatch(
        new RegExp(`^failed: KafkaJSNumberOfRetriesExceeded .*topic "${refused}", partition 0`),
      );
      // The healthy partition's send() went out while the refused topic's retries went on (it had nothing to wait
      // for: `a` was in the log), not after they were exhausted.
      expect({
        laterBeforeEarlier: earlierSettled === undefined || laterSettled < earlierSettled,
        laterMs: laterSettled,
        earlierMs: earlierSettled,
      }).toEqual({ laterBeforeEarlier: true, laterMs: expect.any(Number), earlierMs: expect.any(Number) });
      expect(await valuesOf(healthy)).toEqual(['first', 'a', 'b']);
    } finally {
      await producer.disconnect();
    }
  }, 60_000);

  it('a send() with a partition refused for good fails at once naming it; the partitions written beside it are written once and stay in step', async () => {
    const healthy = uniqueName('order-healthy');
    const small = uniqueName('order-small');
    await kafka.createTopic(healthy, 1);
    await kafka.createTopic(small, 1, [{ name: 'max.message.bytes', value: '1024' }]);
    const producer = producerOf({ retries: 5, initialRetryTime: 2_000, maxRetryTime: 2_000 });
    await producer.connect();
    try {
      await producer.send({ topic: healthy, acks: -1, messages: [{ value: 'first' }] });
      await producer.send({ topic: small, acks: -1, messages: [{ value: 'first' }] });
      let produceRequests = 0;
      const counting = producer.on(producer.events.REQUEST, ({ payload }) => {
        if (payload.apiName === 'Produce') produceRequests++;
      });
      const failure = await producer
        .sendBatch({
          acks: -1,
          topicMessages: [
            { topic: healthy, messages: [{ value: 'a' }] },
            { topic: small, messages: [{ value: 'x'.repeat(8_192) }] },
          ],
        })
        .then(
          () => undefined,
          (error: Error & { type?: string }) => ({
            name: error.name,
            type: error.type,
            message: error.message,
          }),
        );
      counting();
      expect(failure).toEqual({
        name: 'KafkaJSProtocolError',
        type: 'MESSAGE_TOO_LARGE',
        message: expect.stringContaining(`(topic "${small}", partition 0)`),
      });
      // Not retried: the one Produce request that carried both partitions, none after a backoff.
      expect(produceRequests).toBe(1);

      // Both partitions take the next records at once: the healthy one's numbers were answered, the refused
      // batch's numbers given back.
      await producer.sendBatch({
        acks: -1,
        topicMessages: [
          { topic: healthy, messages: [{ value: 'b' }] },
          { topic: small, messages: [{ value: 'y' }] },
        ],
      });
      expect(await valuesOf(healthy)).toEqual(['first', 'a', 'b']);
      expect(await valuesOf(small)).toEqual(['first', 'y']);
    } finally {
      await producer.disconnect();
    }
  }, 60_000);
});
