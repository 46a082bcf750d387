import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { Admin, Consumer, ConsumerConfig, Kafka as KafkaClient, KafkaMessage, Producer } from 'kafkajs';

const { Kafka, Partitioners, logLevel } = kafkajs;

export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

/** Client settings for fast, stable group tests on 2 cores (DESIGN.md). Retry passed explicitly: NODE_ENV=test. */
export const TEST_RETRY = { initialRetryTime: 100, maxRetryTime: 2_000, retries: 10 };
export const TEST_CONSUMER_TUNING = {
  maxWaitTimeInMs: 150,
  heartbeatInterval: 400,
  sessionTimeout: 6_000,
  rebalanceTimeout: 10_000,
};

/** Fresh names per spec and test so specs never see each other's data. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function testKafka(clientId = 'e2e'): KafkaClient {
  return new Kafka({ clientId, brokers: BROKERS, logLevel: logLevel.NOTHING, retry: TEST_RETRY });
}

/** Tracks every client a spec opens, so `closeAll()` in afterAll/afterEach leaves nothing connected. */
export class TestKafka {
  readonly kafka = testKafka();
  private readonly closers: (() => Promise<void>)[] = [];
  private adminClient?: Admin;

  async admin(): Promise<Admin> {
    if (!this.adminClient) {
      const admin = this.kafka.admin({ retry: TEST_RETRY });
      await admin.connect();
      this.closers.push(() => admin.disconnect());
      this.adminClient = admin;
    }
    return this.adminClient;
  }

  async producer(): Promise<Producer> {
    const producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: TEST_RETRY,
    });
    await producer.connect();
    this.closers.push(() => producer.disconnect());
    return producer;
  }

  consumer(config: Partial<ConsumerConfig> & { groupId: string }): Consumer {
    const consumer = this.kafka.consumer({
      allowAutoTopicCreation: false,
      ...TEST_CONSUMER_TUNING,
      retry: TEST_RETRY,
      ...config,
    });
    this.closers.push(() => consumer.disconnect());
    return consumer;
  }

  async createTopic(
    topic: string,
    numPartitions: number,
    configEntries: { name: string; value: string }[] = [],
  ) {
    const admin = await this.admin();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
    });
  }

  /** Produces `count` JSON messages; `keyOf(i)` picks the key, and the value carries `seq` and `key`. */
  async produceKeyed(
    topic: string,
    count: number,
    keyOf: (i: number) => string,
    extra: (i: number) => object = () => ({}),
  ) {
    const producer = await this.producer();
    const messages = Array.from({ length: count }, (_, i) => ({
      key: keyOf(i),
      value: JSON.stringify({ seq: i, key: keyOf(i), ...extra(i) }),
    }));
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) });
    }
  }

  /** Waits until the group is Stable with `members` members; returns member id -> assigned partitions count. */
  async waitForStableGroup(groupId: string, members: number, timeoutMs = 30_000) {
    const admin = await this.admin();
    return waitFor(`group ${groupId} Stable with ${members} member(s)`, timeoutMs, async () => {
      const { groups } = await admin.describeGroups([groupId]);
      const group = groups[0];
      return group?.state === 'Stable' && group.members.length === members ? group : undefined;
    });
  }

  /** Committed offset and log-end offset per partition of a topic for a group. */
  async offsets(groupId: string, topic: string) {
    const admin = await this.admin();
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    return ends
      .map(({ partition, high }) => ({
        partition,
        end: Number(high),
        committed: Number(committed.partitions.find((p) => p.partition === partition)?.offset ?? -1),
      }))
      .sort((a, b) => a.partition - b.partition);
  }

  async waitForCommittedToEnd(groupId: string, topic: string, timeoutMs = 30_000) {
    return waitFor(`group ${groupId} committed up to the end of ${topic}`, timeoutMs, async () => {
      const offsets = await this.offsets(groupId, topic);
      return offsets.every((o) => o.committed === o.end) ? offsets : undefined;
    });
  }

  /**
   * Reads a topic from the beginning with a fresh group until `count` messages arrived, and fails when the topic
   * holds more than `count` (an extra dead letter must not go unseen).
   */
  async readMessages(topic: string, count: number, timeoutMs = 30_000): Promise<KafkaMessage[]> {
    const held = (await (await this.admin()).fetchTopicOffsets(topic)).reduce(
      (sum, { high, low }) => sum + Number(high) - Number(low),
      0,
    );
    if (held > count) throw new Error(`${topic} holds ${held} message(s), expected ${count}`);
    const messages: KafkaMessage[] = [];
    const consumer = this.consumer({ groupId: uniqueName('reader') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await waitFor(`${count} message(s) on ${topic}`, timeoutMs, () => messages.length >= count);
    await consumer.disconnect();
    if (messages.length !== count)
      throw new Error(`read ${messages.length} message(s) of ${topic}, expected ${count}`);
    return messages;
  }

  async closeAll(): Promise<void> {
    while (this.closers.length > 0) {
      await this.closers.pop()!().catch(() => undefined);
    }
    this.adminClient = undefined;
  }
}

/** Polls `probe` until it returns a value other than undefined/false, or fails naming what it waited for. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
