import { randomUUID } from 'node:crypto';
import {
  type Admin,
  AssignerProtocol,
  type Consumer,
  type ConsumerConfig,
  type GroupDescription,
  Kafka,
  type KafkaConfig,
  KafkaLogLevel,
  type KafkaMessage,
  type Message,
  Partitioners,
  type Producer,
  type RetryOptions,
} from '../client/kafkajs.js';

/** Client retries for tests, passed explicitly everywhere: under jest NODE_ENV=test changes kafkajs's defaults. */
export const TEST_RETRY: RetryOptions = { initialRetryTime: 100, maxRetryTime: 2_000, retries: 10 };

/** Consumer timings for fast, stable group tests on a small machine (`forRoot({ consumer })` takes them too). */
export const TEST_CONSUMER_TUNING = {
  maxWaitTimeInMs: 150,
  heartbeatInterval: 400,
  sessionTimeout: 6_000,
  rebalanceTimeout: 10_000,
} as const;

/** The brokers tests use: KAFKA_BROKERS (comma-separated, set by `ensureBroker` in a globalSetup), else 127.0.0.1:9092. */
export function testBrokers(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.KAFKA_BROKERS?.trim() || '127.0.0.1:9092').split(',').map((broker) => broker.trim());
}

/** A fresh name per test (`orders-1a2b3c4d`), so tests never see each other's topics and groups. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * Polls `probe` every `intervalMs` until it returns a value other than undefined or false, and resolves with it;
 * rejects after `timeoutMs` naming `what` it waited for (and the probe's last error).
 */
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

/** Committed and log-end offset of one partition for a group; `committed` is -1 when nothing was committed. */
export interface PartitionOffsets {
  partition: number;
  committed: number;
  end: number;
}

/** Settings of a KafkaTestClient: the brokers (default `testBrokers()`) and any other kafkajs client setting. */
export type KafkaTestClientOptions = Partial<KafkaConfig>;

/**
 * A test's view of the cluster, on the library's own kafkajs (its carried fixes and codecs, so a test reads what
 * the service reads): create topics, produce, read a topic, wait for a group to be Stable with every partition
 * assigned, wait for a group to have committed up to the log end. Tracks every client it opens; call `closeAll()`
 * in afterAll.
 */
export class KafkaTestClient {
  /** The underlying client, for anything these helpers do not cover. */
  readonly kafka: Kafka;
  private readonly closers: (() => Promise<void>)[] = [];
  private adminClient?: Admin;

  constructor(options: KafkaTestClientOptions = {}) {
    this.kafka = new Kafka({
      clientId: 'kafka-test-client',
      logLevel: KafkaLogLevel.NOTHING,
      retry: TEST_RETRY,
      ...options,
      brokers: options.brokers ?? testBrokers(),
    });
  }

  /** One admin client, connected on first use. */
  async admin(): Promise<Admin> {
    if (!this.adminClient) {
      const admin = this.kafka.admin({ retry: TEST_RETRY });
      await admin.connect();
      this.closers.push(() => admin.disconnect());
      this.adminClient = admin;
    }
    return this.adminClient;
  }

  /** A new connected producer (no topic auto-creation, kafkajs's default partitioner: Java's murmur2). */
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

  /** A new consumer (not connected) with TEST_CONSUMER_TUNING and no topic auto-creation. */
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

  /**
   * Creates a topic and waits for its partition leaders. kafkajs's own wait (`waitForLeaders`) fails at once when
   * the broker does not know the new topic yet (UNKNOWN_TOPIC_OR_PARTITION, not retried), which a loaded broker or
   * an admin that still caches a deleted topic of that name answers: the leaders are polled here instead.
   */
  async createTopic(
    topic: string,
    numPartitions: number,
    configEntries: { name: string; value: string }[] = [],
    replicationFactor = 1,
  ): Promise<void> {
    const admin = await this.admin();
    await admin.createTopics({
      waitForLeaders: false,
      topics: [{ topic, numPartitions, replicationFactor, configEntries }],
    });
    await waitFor(`leaders of the ${numPartitions} partition(s) of ${topic}`, 30_000, async () => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics[0]?.partitions ?? [];
      return partitions.length === numPartitions && partitions.every((p) => p.leader >= 0);
    });
  }

  /** Sends messages acknowledged by every in-sync replica, 500 a request. */
  async produce(topic: string, messages: Message[]): Promise<void> {
    const producer = await this.producer();
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) });
    }
  }

  /** Produces `count` JSON messages; `keyOf(i)` picks the key, and the value is `{ seq: i, key, ...extra(i) }`. */
  async produceKeyed(
    topic: string,
    count: number,
    keyOf: (i: number) => string,
    extra: (i: number) => object = () => ({}),
  ): Promise<void> {
    await this.produce(
      topic,
      Array.from({ length: count }, (_, i) => ({
        key: keyOf(i),
        value: JSON.stringify({ seq: i, key: keyOf(i), ...extra(i) }),
      })),
    );
  }

  /**
   * Waits until the group is Stable with `members` members and every partition of the existing topics its
   * members subscribed to is assigned to one of them; resolves with the group's description.
   */
  async waitForStableGroup(groupId: string, members: number, timeoutMs = 30_000): Promise<GroupDescription> {
    const admin = await this.admin();
    return waitFor(
      `group ${groupId} Stable with ${members} member(s) and every partition assigned`,
      timeoutMs,
      async () => {
        const { groups } = await admin.describeGroups([groupId]);
        const group = groups[0];
        if (group?.state !== 'Stable' || group.members.length !== members) return undefined;
        return (await this.everyPartitionAssigned(admin, group)) ? group : undefined;
      },
    );
  }

  /** Committed offset and log-end offset per partition of a topic for a group, by partition. */
  async offsets(groupId: string, topic: string): Promise<PartitionOffsets[]> {
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

  /**
   * Waits until the group's committed offset equals the log end on every partition of `topic`. A partition that
   * holds nothing (never written to, or emptied by retention) and has no commit counts as at its end: a consumer
   * commits nothing where it received nothing.
   */
  async waitForCommittedToEnd(
    groupId: string,
    topic: string,
    timeoutMs = 30_000,
  ): Promise<PartitionOffsets[]> {
    return waitFor(`group ${groupId} committed up to the end of ${topic}`, timeoutMs, async () => {
      const [offsets, bounds] = await Promise.all([
        this.offsets(groupId, topic),
        (await this.admin()).fetchTopicOffsets(topic),
      ]);
      const empty = new Set(bounds.filter(({ low, high }) => low === high).map(({ partition }) => partition));
      const atEnd = (o: PartitionOffsets) =>
        o.committed === o.end || (o.committed === -1 && empty.has(o.partition));
      return offsets.every(atEnd) ? offsets : undefined;
    });
  }

  /**
   * Reads a topic from the beginning with a fresh group until `count` messages arrived; fails when the topic holds
   * more than `count` (an extra message, a second dead letter say, must not go unseen).
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
    if (messages.length !== count) {
      throw new Error(`read ${messages.length} message(s) of ${topic}, expected ${count}`);
    }
    return messages;
  }

  /** Disconnects every client this instance opened, newest first. */
  async closeAll(): Promise<void> {
    while (this.closers.length > 0) {
      await this.closers.pop()!().catch(() => undefined);
    }
    this.adminClient = undefined;
  }

  private async everyPartitionAssigned(admin: Admin, group: GroupDescription): Promise<boolean> {
    const subscribed = new Set<string>();
    const assigned = new Set<string>();
    for (const member of group.members) {
      for (const topic of AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.topics ?? []) {
        subscribed.add(topic);
      }
      const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)?.assignment ?? {};
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions) assigned.add(`${topic}:${partition}`);
      }
    }
    // A subscribed topic that does not exist has nothing to assign (members skip it, as Java's do).
    const existing = new Set(await admin.listTopics());
    const present = [...subscribed].filter((topic) => existing.has(topic));
    if (present.length === 0) return true;
    const { topics } = await admin.fetchTopicMetadata({ topics: present });
    return topics.every((topic) =>
      topic.partitions.every((p) => assigned.has(`${topic.name}:${p.partitionId}`)),
    );
  }
}
