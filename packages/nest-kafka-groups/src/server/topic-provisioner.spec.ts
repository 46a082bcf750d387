import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Admin, Kafka } from '../client/kafkajs.js';
import type { ResolvedTopicOptions } from '../kafka.options.js';
import { KafkaMissingTopicError } from '../errors/kafka-missing-topic.error.js';
import { type TopicRequirement, TopicProvisioner } from './topic-provisioner.js';

/**
 * The sizes of the retry and dead-letter topics the provisioner creates (docs/RELIABILITY.md, finding 21), against
 * an admin client stand-in: what it is asked to create, given the source topics' configs it answers.
 */
interface Created {
  topic: string;
  numPartitions: number;
  config: Record<string, string>;
}

function fakeKafka(
  existing: string[],
  sizes: Record<string, string> | Error,
  refused: readonly string[] = [],
  unreadable: readonly string[] = [],
  lookups: Record<string, Error> = {},
) {
  const created: Created[] = [];
  /** The topics of each DescribeConfigs. */
  const described: string[][] = [];
  const admin = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    listTopics: async () => existing,
    createTopics: async ({ topics }: Parameters<Admin['createTopics']>[0]) => {
      for (const { topic, numPartitions, configEntries } of topics) {
        if (refused.includes(topic))
          throw Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), {
            type: 'TOPIC_AUTHORIZATION_FAILED',
          });
        created.push({
          topic,
          numPartitions: numPartitions!,
          config: Object.fromEntries((configEntries ?? []).map((e) => [e.name, e.value])),
        });
      }
      return true;
    },
    fetchTopicMetadata: async ({ topics }: { topics: string[] }) => {
      const failed = topics.find((name) => lookups[name]);
      if (failed) throw lookups[failed];
      return { topics: topics.map((name) => ({ name, partitions: [{}, {}, {}] })) };
    },
    describeConfigs: async ({ resources }: Parameters<Admin['describeConfigs']>[0]) => {
      described.push(resources.map((r) => r.name));
      if (sizes instanceof Error) throw sizes;
      if (resources.some((r) => unreadable.includes(r.name))) throw new Error('Topic authorization failed');
      return {
        resources: resources.map(({ name }) => ({
          resourceName: name,
          configEntries: [{ configName: 'max.message.bytes', configValue: sizes[name] }],
        })),
      };
    },
  };
  return { kafka: { admin: () => admin } as unknown as Kafka, created, described };
}

const IDENTITY = { brokers: 'b:9092', mechanism: 'PLAINTEXT', principal: 'an anonymous client' };

function options(config: Record<string, string> = {}): ResolvedTopicOptions {
  return { create: true, partitions: 3, replicationFactor: 1, config };
}

function requirements(config?: Record<string, string>): TopicRequirement[] {
  return [
    { topic: 'orders', role: 'source', options: options(config) },
    {
      topic: 'orders-retry',
      role: 'retry',
      options: options(config),
      partitionsOf: 'orders',
      sizeOf: 'orders',
    },
    { topic: 'orders-dlt', role: 'dead letters', options: options(config), sizeOf: 'orders' },
  ];
}

describe('TopicProvisioner: sizes of the retry and dead-letter topics it creates', () => {
  let warn: jest.SpiedFunction<Logger['warn']>;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  test("take the source topic's max.message.bytes plus room for the headers", async () => {
    const { kafka, created } = fakeKafka(['orders'], { orders: '262144' });
    await new TopicProvisioner(kafka, IDENTITY).ensure('g', requirements());
    expect(created).toEqual([
      { topic: 'orders-retry', numPartitions: 3, config: { 'max.message.bytes': String(262_144 + 16_384) } },
      { topic: 'orders-dlt', numPartitions: 3, config: { 'max.message.bytes': String(262_144 + 16_384) } },
    ]);
    expect(warn).not.toHaveBeenCalled();
  });

  test('a source created in the same pass is created first, then read', async () => {
    const { kafka, created } = fakeKafka([], { orders: '1048588' });
    await new TopicProvisioner(kafka, IDENTITY).ensure('g', requirements());
    expect(created.map((c) => [c.topic, c.config['max.message.bytes']])).toEqual([
      ['orders', undefined],
      ['orders-retry', String(1_048_588 + 16_384)],
      ['orders-dlt', String(1_048_588 + 16_384)],
    ]);
  });

  test('max.message.bytes in topics.config wins', async () => {
    const { kafka, created } = fakeKafka(['orders'], { orders: '262144' });
    await new TopicProvisioner(kafka, IDENTITY).ensure('g', requirements({ 'max.message.bytes': '5000000' }));
    expect(created.map((c) => c.config['max.message.bytes'])).toEqual(['5000000', '5000000']);
  });

  test('cleanup.policy compact in topics.config: the source is compacted, its retry and dead-letter topics not, said in their lines', async () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const { kafka, created } = fakeKafka([], { orders: '1048588' });
    await new TopicProvisioner(kafka, IDENTITY).ensure(
      'g',
      requirements({ 'cleanup.policy': 'compact,delete', 'min.cleanable.dirty.ratio': '0.1' }),
    );
    expect(
      created.map((c) => [c.topic, c.config['cleanup.policy'], c.config['min.cleanable.dirty.ratio']]),
    ).toEqual([
      ['orders', 'compact,delete', '0.1'],
      ['orders-retry', 'delete', '0.1'],
      ['orders-dlt', 'delete', '0.1'],
    ]);
    expect(
      log.mock.calls.map((call) => String(call[0])).filter((line) => line.includes('not compact')),
    ).toEqual([
      expect.stringMatching(
        /^Created topic "orders-retry" .*, cleanup.policy delete \(not compact as topics.config says\)$/,
      ),
      expect.stringMatching(
        /^Created topic "orders-dlt" .*, cleanup.policy delete \(not compact as topics.config says\)$/,
      ),
    ]);
  });

  test('retention.ms in topics.config: a retry topic takes it plus its longest delay, said in its line; the others as set', async () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const { kafka, created } = fakeKafka([], { orders: '1048588' });
    const [source, retry, dlt] = requirements({ 'retention.ms': '60000' });
    await new TopicProvisioner(kafka, IDENTITY).ensure('g', [source, { ...retry, delayMs: 120_000 }, dlt]);
    expect(created.map((c) => [c.topic, c.config['retention.ms']])).toEqual([
      ['orders', '60000'],
      ['orders-retry', '180000'],
      ['orders-dlt', '60000'],
    ]);
    expect(
      log.mock.calls.map((call) => String(call[0])).filter((line) => line.includes('longest delay')),
    ).toEqual([
      expect.stringMatching(
        /^Created topic "orders-retry" .*, retention\.ms 180000 \(topics\.config's plus its longest delay, 120000 ms\)$/,
      ),
    ]);
  });

  test('retention.ms -1 (kept for ever) or not set: a retry topic takes it as it is', async () => {
    const { kafka, created } = fakeKafka([], { orders: '1048588' });
    const [, retry] = requirements({ 'retention.ms': '-1' });
    const [, unset] = requirements();
    await new TopicProvisioner(kafka, IDENTITY).ensure('g', [
      { ...retry, delayMs: 120_000 },
      { ...unset, topic: 'other-retry', delayMs: 120_000 },
    ]);
    expect(created.map((c) => [c.topic, c.config['retention.ms']])).toEqual([
      ['orders-retry', '-1'],
      ['other-retry', undefined],
    ]);
  });

  test("configs it may not read: the broker's default size, said in each created topic's line (a WARN)", async () => {
    const denied = new Error('Topic authorization failed');
    const { kafka, created } = fakeKafka(['orders'], denied);
    const provisioner = new TopicProvisioner(kafka, IDENTITY);
    await provisioner.ensure('g', requirements());
    expect(created.map((c) => c.config)).toEqual([{}, {}]);
    expect(warn.mock.calls.map((call) => call[0])).toEqual([
      'Created topic "orders-retry" (retry, group "g"): 3 partition(s), replication factor 1, the broker\'s default ' +
        'max.message.bytes: that of its source topic "orders" could not be read (Topic authorization failed)',
      'Created topic "orders-dlt" (dead letters, group "g"): 3 partition(s), replication factor 1, the broker\'s ' +
        'default max.message.bytes: that of its source topic "orders" could not be read (Topic authorization failed)',
    ]);
  });

  test('configs it may not read and topics it may not create: only the refusal, no word of a default size', async () => {
    const { kafka, created } = fakeKafka(['orders'], new Error('Topic authorization failed'), [
      'orders-retry',
      'orders-dlt',
    ]);
    const refusal = new TopicProvisioner(kafka, IDENTITY).ensure('g', requirements());
    await expect(refusal).rejects.toThrow('not authorized to create topics orders-retry, orders-dlt');
    expect(created).toEqual([]);
    expect(warn).not.toHaveBeenCalled();
  });

  test('configs not read for another reason (a timeout): the pass fails, to be retried; nothing created', async () => {
    const timeout = Object.assign(new Error('Request DescribeConfigs timed out'), {
      type: 'REQUEST_TIMED_OUT',
    });
    const { kafka, created } = fakeKafka(['orders'], timeout);
    await expect(new TopicProvisioner(kafka, IDENTITY).ensure('g', requirements())).rejects.toBe(timeout);
    expect(created).toEqual([]);
  });
});

describe('TopicProvisioner: retry and dead-letter topics that exist, against their source topic', () => {
  let warn: jest.SpiedFunction<Logger['warn']>;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  test('smaller: one WARN per topic, once; all sizes in one DescribeConfigs', async () => {
    const sizes = { orders: '262144', 'orders-retry': '65536', 'orders-dlt': '262144' };
    const { kafka, described } = fakeKafka(['orders', 'orders-retry', 'orders-dlt'], sizes);
    const provisioner = new TopicProvisioner(kafka, IDENTITY);
    await provisioner.ensure('g', requirements());
    await provisioner.ensure('g', requirements());
    expect(described).toEqual([
      ['orders', 'orders-retry', 'orders-dlt'],
      ['orders', 'orders-retry', 'orders-dlt'],
    ]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toContain(
      'Topic "orders-retry" (retry, group "g") has max.message.bytes 65536, less than the 262144 of its source topic ' +
        '"orders": a record that fits there may not fit here (its partition then stops when the record fails).',
    );
    expect(warn.mock.calls[0][0]).toContain(
      'kafka-configs.sh --bootstrap-server b:9092 --alter --entity-type topics --entity-name orders-retry ' +
        `--add-config max.message.bytes=${262_144 + 16_384}`,
    );
  });

  test("secured cluster: the size WARN's kafka-configs.sh command takes the client's properties", async () => {
    const sizes = { orders: '262144', 'orders-retry': '65536', 'orders-dlt': '262144' };
    const { kafka } = fakeKafka(['orders', 'orders-retry', 'orders-dlt'], sizes);
    const secured = { brokers: 'b:9093', mechanism: 'SASL_SSL, SCRAM-SHA-512', principal: 'user svc' };
    await new TopicProvisioner(kafka, secured).ensure('g', requirements());
    expect(warn.mock.calls[0][0]).toContain(
      'kafka-configs.sh --bootstrap-server b:9093 --command-config <client.properties> --alter --entity-type topics ' +
        `--entity-name orders-retry --add-config max.message.bytes=${262_144 + 16_384}`,
    );
  });

  test('no retry or dead-letter topic: no DescribeConfigs', async () => {
    const { kafka, described } = fakeKafka(['orders'], { orders: '262144' });
    await new TopicProvisioner(kafka, IDENTITY).ensure('g', requirements().slice(0, 1));
    expect(described).toEqual([]);
  });

  test("configs of an existing one it may not read: no WARN, and the one to create still takes its source's size", async () => {
    const { kafka, created, described } = fakeKafka(
      ['orders', 'orders-dlt'],
      { orders: '262144' },
      [],
      ['orders-dlt'],
    );
    await new TopicProvisioner(kafka, IDENTITY).ensure('g', requirements());
    expect(described).toEqual([['orders', 'orders-dlt'], ['orders']]);
    expect(created.map((c) => [c.topic, c.config['max.message.bytes']])).toEqual([
      ['orders-retry', String(262_144 + 16_384)],
    ]);
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('TopicProvisioner: topics it may not create', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  test('names the refused topics and those waiting for them; creates those whose source exists', async () => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const { kafka, created } = fakeKafka(['other'], { other: '262144' }, ['orders']);
    const needed = [
      ...requirements(),
      { topic: 'other', role: 'source', options: options() },
      { topic: 'other-dlt', role: 'dead letters', options: options(), sizeOf: 'other' },
    ];
    const refusal = new TopicProvisioner(kafka, IDENTITY).ensure('g', needed);
    await expect(refusal).rejects.toThrow(
      'not authorized to create topics orders, orders-retry, orders-dlt as an anonymous client ' +
        '(they are missing or not visible without DESCRIBE; create them or grant CREATE)',
    );
    expect(created.map((c) => [c.topic, c.config['max.message.bytes']])).toEqual([
      ['other-dlt', String(262_144 + 16_384)],
    ]);
  });
});

describe('TopicProvisioner: topics not listed, creation off', () => {
  const off: ResolvedTopicOptions = { create: false, config: {} };
  const unknown = () =>
    Object.assign(new Error('This server does not host this topic-partition'), {
      type: 'UNKNOWN_TOPIC_OR_PARTITION',
    });
  const hidden = () =>
    Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), {
      type: 'TOPIC_AUTHORIZATION_FAILED',
    });
  const needed = (...topics: string[]) => topics.map((topic) => ({ topic, role: 'source', options: off }));

  test('all found by their metadata (created since the listing): no error', async () => {
    const { kafka } = fakeKafka([], {});
    await expect(new TopicProvisioner(kafka, IDENTITY).ensure('g', needed('orders', 'fares'))).resolves.toBe(
      undefined,
    );
  });

  test('missing and hidden: the missing named as missing, the hidden beside them', async () => {
    const { kafka } = fakeKafka([], {}, [], [], { orders: unknown(), fares: hidden() });
    const error = new TopicProvisioner(kafka, IDENTITY).ensure('g', needed('orders', 'fares', 'seats'));
    await expect(error).rejects.toThrow(KafkaMissingTopicError);
    await expect(error).rejects.toThrow(
      'Consumer group "g" needs "orders", which does not exist and topic creation is off',
    );
    await expect(error).rejects.toThrow(
      '"fares" is hidden from an anonymous client without DESCRIBE (whether it exists is not known)',
    );
  });
});
