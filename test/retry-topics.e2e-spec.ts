import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  DLT_HEADERS,
  KafkaGroupContext,
  KafkaGroupsServer,
  KafkaHandler,
  KafkaModule,
  KafkaNonRetryableError,
  RETRY_TOPIC_HEADERS,
} from 'nest-kafka-groups';
import { type IHeaders, Partitioners } from 'kafkajs';
import { expectErrorLines } from './support/error-lines.js';
import { INTEROP_CONSUMER_SOURCE, KAFKA_LIB } from './support/java/java-consumer.js';
import { testBrokers, KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

/** Issue 11.2: non-blocking retry topics, Spring Kafka's names and headers, against the real broker. */

const DELAYS = [300, 800];

interface Delivery {
  key: string;
  topic: string;
  partition: number;
  offset: string;
  attempt: number;
  at: number;
}

const deliveries: Delivery[] = [];
/** Throws for the deliveries that should fail; by default every one succeeds. */
let behaviour: (key: string, attempt: number) => void = () => undefined;

class Permanent extends KafkaNonRetryableError {}

@Controller()
class RetryTopicsController {
  @KafkaHandler('${TOPIC}', { retry: { topics: true, delaysMs: DELAYS } })
  handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext) {
    const key = ctx.key ?? '';
    deliveries.push({
      key,
      topic: ctx.topic,
      partition: ctx.partition,
      offset: ctx.offset,
      attempt: ctx.attempt,
      at: Date.now(),
    });
    behaviour(key, ctx.attempt);
  }
}

function feature(groupId: string, topic: string) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
    controllers: [RetryTopicsController],
  })
  class RetryTopicsFeature {}
  return RetryTopicsFeature;
}

/** The last value of a header, as Java's lastHeader reads it. */
function last(headers: IHeaders | undefined, name: string): Buffer {
  const value = headers?.[name];
  const found = Array.isArray(value) ? value[value.length - 1] : value;
  if (found === undefined) throw new Error(`no ${name} header`);
  return Buffer.from(found as Buffer);
}

/** Every value of a repeated header. */
function all(headers: IHeaders | undefined, name: string): Buffer[] {
  const value = headers?.[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => Buffer.from(v as Buffer));
}

/** Java's `new BigInteger(bytes).longValue()` for the 1 to 8 bytes Spring writes. */
function javaLong(bytes: Buffer): number {
  return Number(BigInt.asIntN(bytes.length * 8, BigInt(`0x${bytes.toString('hex')}`)));
}

describe('retry topics', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    deliveries.length = 0;
    behaviour = () => undefined;
  });
  afterAll(() => kafka.closeAll());

  /** Every partition that holds records is committed to its end (the empty ones have no commit). */
  function committedToEnd(groupId: string, topic: string) {
    return waitFor(`${groupId} committed to the end of ${topic}`, 30_000, async () => {
      const offsets = await kafka.offsets(groupId, topic);
      return offsets.every((o) => o.end === 0 || o.committed === o.end) ? offsets : undefined;
    });
  }

  async function start(groupId: string, topic: string, root: object = {}) {
    const started = await startTestApp([feature(groupId, topic)], { topics: { create: true }, ...root });
    apps.push(started.app);
    return started;
  }

  test('a message failing twice then succeeding: three deliveries, the delays apart, committed once on each topic', async () => {
    const topic = uniqueName('rt-flaky');
    const groupId = uniqueName('rt-flaky');
    const [retry1, retry2] = [`${topic}-retry-300`, `${topic}-retry-800`];
    // Created here with 3 partitions: the retry topics must get the main topic's count, not the broker's default.
    await kafka.createTopic(topic, 3);
    behaviour = (key, attempt) => {
      if (key === 'flaky' && attempt < 3) throw new Error(`flaky failure ${attempt}`);
    };
    await start(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    // Everything on partition 0: the flaky message first, then ten that must not wait for its retries.
    await producer.send({
      topic,
      acks: -1,
      messages: [
        { partition: 0, key: 'flaky', value: JSON.stringify({ seq: 0 }) },
        ...Array.from({ length: 10 }, (_, i) => ({
          partition: 0,
          key: `steady-${i}`,
          value: JSON.stringify({ seq: i + 1 }),
        })),
      ],
    });
    await waitFor('the third delivery of the flaky message', 30_000, () =>
      deliveries.filter((d) => d.key === 'flaky').length >= 3 ? true : undefined,
    );
    for (const t of [topic, retry1, retry2]) await committedToEnd(groupId, t);

    const flaky = deliveries.filter((d) => d.key === 'flaky');
    expect(flaky.map((d) => [d.topic, d.attempt])).toEqual([
      [topic, 1],
      [retry1, 2],
      [retry2, 3],
    ]);
    expect(flaky[1].at - flaky[0].at).toBeGreaterThanOrEqual(DELAYS[0]);
    expect(flaky[2].at - flaky[1].at).toBeGreaterThanOrEqual(DELAYS[1]);
    // The main partition flowed on while the message waited: every steady message before its first retry.
    const steady = deliveries.filter((d) => d.key.startsWith('steady-'));
    expect(steady).toHaveLength(10);
    for (const d of steady) expect(d.at).toBeLessThan(flaky[1].at);
    // Once per topic: one record in each retry topic, no delivery twice, and every offset committed.
    const admin = await kafka.admin();
    for (const retryTopic of [retry1, retry2]) {
      const ends = await admin.fetchTopicOffsets(retryTopic);
      expect(ends.reduce((sum, p) => sum + Number(p.high), 0)).toBe(1);
    }
    const seen = deliveries.map((d) => `${d.topic}/${d.partition}/${d.offset}`);
    expect(new Set(seen).size).toBe(seen.length);
    expect((await kafka.offsets(groupId, topic))[0]).toMatchObject({ committed: 11, end: 11 });
    // Created at start-up with the main topic's partition count.
    const { topics } = await admin.fetchTopicMetadata({ topics: [retry1, retry2] });
    expect(topics.map((t) => t.partitions.length)).toEqual([3, 3]);
  });

  test("the retry records carry Spring's headers, in Spring's encodings", async () => {
    const topic = uniqueName('rt-headers');
    const groupId = uniqueName('rt-headers');
    await kafka.createTopic(topic, 1);
    behaviour = (_key, attempt) => {
      if (attempt === 1) throw new Error('first attempt fails');
    };
    await start(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    const sentAt = 1_700_000_000_123;
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key: 'k', value: '{}', timestamp: String(sentAt), headers: { trace: 'abc' } }],
    });
    await waitFor('the retry delivery', 20_000, () => deliveries.length >= 2);
    const failedAt = deliveries[0].at;
    const [record] = await kafka.readMessages(`${topic}-retry-300`, 1);
    const headers = record.headers;
    expect(last(headers, RETRY_TOPIC_HEADERS.attempts).toString('hex')).toBe('00000002');
    // BigInteger.toByteArray of a long: the shortest two's complement form (6 bytes for today's time).
    const original = last(headers, RETRY_TOPIC_HEADERS.originalTimestamp);
    expect(original.toString('hex')).toBe('018bcfe5687b');
    const due = javaLong(last(headers, RETRY_TOPIC_HEADERS.backoffTimestamp));
    expect(last(headers, RETRY_TOPIC_HEADERS.backoffTimestamp)).toHaveLength(6);
    expect(due).toBeGreaterThanOrEqual(failedAt + DELAYS[0]);
    expect(due).toBeLessThanOrEqual(failedAt + DELAYS[0] + 2_000);
    // The original headers and the value travel with it, plus the dead-letter headers naming the main record.
    expect(last(headers, 'trace').toString()).toBe('abc');
    expect(record.value?.toString()).toBe('{}');
    expect(record.key?.toString()).toBe('k');
    expect(last(headers, DLT_HEADERS.originalTopic).toString()).toBe(topic);
    expect(last(headers, DLT_HEADERS.exceptionMessage).toString()).toBe('first attempt fails');
    // The second delivery waited for the backoff timestamp.
    expect(deliveries[1].at).toBeGreaterThanOrEqual(due);
  });

  test("after the last delay the message is in the dead-letter topic with Spring's headers", async () => {
    const topic = uniqueName('rt-dlt');
    const groupId = uniqueName('rt-dlt');
    await kafka.createTopic(topic, 2);
    behaviour = (_key, attempt) => {
      throw new Error(`always fails (attempt ${attempt})`);
    };
    await start(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    await producer.send({ topic, acks: -1, messages: [{ key: 'doomed', value: '{"n":1}' }] });
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1, 30_000);
    for (const t of [topic, `${topic}-retry-300`, `${topic}-retry-800`]) await committedToEnd(groupId, t);

    expect(deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);
    expect(deliveries[2].at - deliveries[0].at).toBeGreaterThanOrEqual(DELAYS[0] + DELAYS[1]);
    const first = deliveries[0];
    const headers = dead.headers;
    expect(dead.key?.toString()).toBe('doomed');
    expect(dead.value?.toString()).toBe('{"n":1}');
    // The dead-letter headers name the record in the main topic, and the last failure.
    expect(last(headers, DLT_HEADERS.originalTopic).toString()).toBe(topic);
    expect(last(headers, DLT_HEADERS.originalPartition).readInt32BE()).toBe(first.partition);
    expect(last(headers, DLT_HEADERS.originalOffset).readBigInt64BE()).toBe(BigInt(first.offset));
    expect(last(headers, DLT_HEADERS.originalConsumerGroup).toString()).toBe(groupId);
    expect(last(headers, DLT_HEADERS.exceptionMessage).toString()).toBe('always fails (attempt 3)');
    expect(all(headers, DLT_HEADERS.exceptionMessage)).toHaveLength(1);
    // Spring keeps every value of the retry headers (retainAllRetryHeaderValues): attempts 2, 3, then 4 here.
    expect(all(headers, RETRY_TOPIC_HEADERS.attempts).map((v) => v.readInt32BE())).toEqual([2, 3, 4]);
    const originals = all(headers, RETRY_TOPIC_HEADERS.originalTimestamp).map(javaLong);
    expect(originals).toHaveLength(3);
    expect(new Set(originals).size).toBe(1);
  });

  test('an error that cannot pass on retry goes to the dead-letter topic at once, past the retry topics', async () => {
    const topic = uniqueName('rt-fatal');
    const groupId = uniqueName('rt-fatal');
    await kafka.createTopic(topic, 1);
    behaviour = () => {
      throw new Permanent('invalid for good');
    };
    await start(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    await producer.send({ topic, acks: -1, messages: [{ key: 'bad', value: '{}' }] });
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(deliveries.map((d) => d.attempt)).toEqual([1]);
    expect(last(dead.headers, DLT_HEADERS.exceptionFqcn).toString()).toBe('Permanent');
    const admin = await kafka.admin();
    const [retry1] = await admin.fetchTopicOffsets(`${topic}-retry-300`);
    expect(Number(retry1.high)).toBe(0);
  });

  test("retry and dead-letter records keep the source record's partition number (Spring's), whatever the key hashes to", async () => {
    const topic = uniqueName('rt-partition');
    const groupId = uniqueName('rt-partition');
    const dlt = `${topic}-dlt`;
    await kafka.createTopic(topic, 3);
    // Fewer partitions than the main topic: a source partition it lacks falls back to the key's partition.
    await kafka.createTopic(dlt, 2);
    const partitionOfKey = (key: string, count: number) =>
      Partitioners.DefaultPartitioner()({
        topic,
        partitionMetadata: Array.from({ length: count }, (_, partitionId) => ({
          partitionId,
          leader: 1,
          replicas: [1],
          isr: [1],
          partitionErrorCode: 0,
        })),
        message: { key, value: null },
      });
    // A key the default partitioner sends elsewhere than partition 2 of a 3-partition topic.
    const key = Array.from({ length: 50 }, (_, i) => `moved-${i}`).find((k) => partitionOfKey(k, 3) !== 2)!;
    behaviour = (_key, attempt) => {
      throw new Error(`always fails (attempt ${attempt})`);
    };
    await start(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    await producer.send({
      topic,
      acks: -1,
      messages: [
        { partition: 2, key, value: '{"n":1}' },
        { partition: 1, key: null, value: '{"n":2}' },
      ],
    });
    await kafka.readMessages(dlt, 2, 30_000);
    const admin = await kafka.admin();
    const recordsPerPartition = async (t: string) =>
      (await admin.fetchTopicOffsets(t))
        .sort((a, b) => a.partition - b.partition)
        .map((p) => Number(p.high) - Number(p.low));
    expect(await recordsPerPartition(`${topic}-retry-300`)).toEqual([0, 1, 1]);
    expect(await recordsPerPartition(`${topic}-retry-800`)).toEqual([0, 1, 1]);
    const expectedDlt = [0, 0];
    expectedDlt[1]++;
    expectedDlt[partitionOfKey(key, 2)]++;
    expect(await recordsPerPartition(dlt)).toEqual(expectedDlt);
  });

  test('a retry partition waiting for its due time is paused again after a rebalance', async () => {
    const topic = uniqueName('rt-rebalance');
    const groupId = uniqueName('rt-rebalance');
    await kafka.createTopic(topic, 2);
    // A long first delay: the rebalance happens while the record waits in its retry topic.
    const slow = [4_000];
    @Controller()
    class SlowRetryController {
      @KafkaHandler('${TOPIC}', { retry: { topics: true, delaysMs: slow } })
      handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext) {
        deliveries.push({
          key: ctx.key ?? '',
          topic: ctx.topic,
          partition: ctx.partition,
          offset: ctx.offset,
          attempt: ctx.attempt,
          at: Date.now(),
        });
        if (ctx.attempt === 1) throw new Error('fails once');
      }
    }
    const slowFeature = () => {
      @Module({
        imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
        controllers: [SlowRetryController],
      })
      class SlowFeature {}
      return SlowFeature;
    };
    const first = await startTestApp([slowFeature()], { topics: { create: true } });
    apps.push(first.app);
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    await producer.send({ topic, acks: -1, messages: [{ key: 'late', value: '{}' }] });
    await waitFor('the first delivery', 10_000, () => deliveries.length >= 1);
    // A second member joins while the record waits: the partitions move, the wait must hold on either member.
    const second = await startTestApp([slowFeature()], { topics: { create: true } });
    apps.push(second.app);
    await kafka.waitForStableGroup(groupId, 2);
    const rebalancedAt = Date.now();
    await waitFor('the retry delivery', 20_000, () => deliveries.length >= 2);
    // The rebalance (which resumes every paused partition) came while the record still waited.
    expect(rebalancedAt).toBeLessThan(deliveries[0].at + slow[0]);
    expect(deliveries.map((d) => [d.topic, d.attempt])).toEqual([
      [topic, 1],
      [`${topic}-retry`, 2],
    ]);
    expect(deliveries[1].at - deliveries[0].at).toBeGreaterThanOrEqual(slow[0]);
  });

  test('with topic creation off, a missing retry topic keeps the group from starting and is named', async () => {
    expectErrorLines(/needs ".*-retry-800", which does not exist and topic creation is off/);
    const topic = uniqueName('rt-missing');
    const groupId = uniqueName('rt-missing');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-retry-300`, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const { app } = await start(groupId, topic, { topics: { create: false } });
    const server = app.get(KafkaGroupsServer);
    const problem = await waitFor('the start-up problem', 10_000, () => server.groups[0].startProblem);
    expect(problem).toContain(`"${topic}-retry-800"`);
    expect(problem).not.toContain(`"${topic}-retry-300"`);
    expect(server.groups[0].members.every((m) => m.state === 'starting')).toBe(true);
  });

  (javaAvailable() ? test : test.skip)(
    'a Java consumer reads the retry headers with the encodings Spring uses',
    async () => {
      const topic = uniqueName('rt-java');
      const groupId = uniqueName('rt-java');
      await kafka.createTopic(topic, 1);
      behaviour = (key, attempt) => {
        if (attempt < 3) throw new Error(`fails ${key}`);
      };
      await start(groupId, topic);
      await kafka.waitForStableGroup(groupId, 1);
      const producer = await kafka.producer();
      const sentAt = Date.now();
      await producer.send({
        topic,
        acks: -1,
        messages: [{ key: 'j', value: '{}', timestamp: String(sentAt) }],
      });
      await waitFor('the third delivery', 30_000, () => deliveries.length >= 3);
      const retry1 = `${topic}-retry-300`;
      const retry2 = `${topic}-retry-800`;
      const stdout = await javaRead([retry1, retry2], 2);
      const records = new Map(
        stdout
          .split('\n')
          .filter((line) => line.startsWith('RECORD '))
          .map((line) => {
            const [, recordTopic, , , key, attempts, backoff, original, values] = line.split(' ');
            const decoded = {
              key,
              attempts: Number(attempts),
              backoff: Number(backoff),
              original: Number(original),
              values: Number(values),
            };
            return [recordTopic, decoded] as const;
          }),
      );
      const first = records.get(retry1)!;
      const second = records.get(retry2)!;
      expect(first).toMatchObject({ key: 'j', attempts: 2, original: sentAt, values: 1 });
      expect(second).toMatchObject({ key: 'j', attempts: 3, original: sentAt, values: 2 });
      expect(first.backoff).toBeGreaterThanOrEqual(deliveries[0].at + DELAYS[0]);
      expect(first.backoff).toBeLessThanOrEqual(deliveries[1].at);
      expect(second.backoff).toBeGreaterThanOrEqual(deliveries[1].at + DELAYS[1]);
      expect(second.backoff).toBeLessThanOrEqual(deliveries[2].at);
    },
  );
});

function javaRead(topics: string[], count: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'java',
      [
        '-Xmx256m',
        '-cp',
        join(KAFKA_LIB, '*'),
        join(INTEROP_CONSUMER_SOURCE, '..', 'RetryHeadersReader.java'),
        testBrokers().join(','),
        topics.join(','),
        String(count),
      ],
      { timeout: 120_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
}
