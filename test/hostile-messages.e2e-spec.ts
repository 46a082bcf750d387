/**
 * Hostile messages against the built example service (dist/main.js, its own process) on a real broker: too many
 * headers, a gzip bomb, 100k keys, 10,000-deep nesting, a 900 KB extra field, `ts: 9e15`, a `__proto__` header,
 * ANSI bytes in a key, a JSON error and a JSON key. Each is handled or dead-lettered within a bound, `/health`
 * answers within its timeout meanwhile, the other partitions keep flowing, the process's memory stays bounded and
 * no log line carries a raw control character.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import kafkajs, { type IHeaders, type KafkaMessage, type Message } from 'kafkajs';
import { Kafka as LibraryKafka, KafkaLogLevel } from 'nest-kafka-groups/testing';
import {
  DLT_HEADERS,
  DLT_STUB_HEADERS,
  KafkaGroupContext,
  KafkaHandler,
  KafkaModule,
} from 'nest-kafka-groups';
import { testBrokers, KafkaTestClient, TEST_RETRY, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';
import { flightPosition } from './support/flight-position.js';
import { ServiceProcess } from './support/service-process.js';

const { CompressionTypes } = kafkajs;
const PARTITIONS = 3;
const HEALTH_TIMEOUT_MS = 2_000;
/** Slack over the health timeout for scheduling on a shared 2-core machine. */
const HEALTH_SLACK_MS = 1_000;
/** From a hostile message's produce time to its dead letter (or handling): the messages queue on one partition. */
const HANDLED_WITHIN_MS = 30_000;
/** A message on a partition without hostile messages: produced to processed. */
const FLOWING_WITHIN_MS = 10_000;
/** Resident memory of the service after the hostile mix. */
const MAX_RSS_BYTES = 400 * 1024 * 1024;

function position(icao24: string, extra: Record<string, unknown> = {}) {
  return flightPosition(icao24, 'HST1', extra);
}

/** `count` distinct keys as densely as JSON allows, so 100k of them stay under the default maxValueBytes. */
function manyKeys(count: number): string {
  return `{${Array.from({ length: count }, (_, i) => `"${i.toString(36)}":0`).join(',')}}`;
}

const ANSI_KEY = '\u001b[31mEVIL\u001b[0m\nFAKE LOG LINE key';

interface Hostile {
  name: string;
  message: Message;
  compression?: number;
  /** Dead-lettered with this exception class and a message containing this text; otherwise handled. */
  deadLetter?: { fqcn: string; contains: string };
}

function hostileMessages(): Hostile[] {
  return [
    {
      name: '10,000 headers',
      message: {
        key: 'd00001',
        value: JSON.stringify(position('d00001')),
        headers: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`h${i}`, 'v'])),
      },
      deadLetter: { fqcn: 'KafkaMessageLimitError', contains: 'limits.maxHeaders' },
    },
    {
      // 5 MiB of zeros gzip to a few KB: the broker takes it, the value is over maxValueBytes once inflated; the
      // dead letter, refused uncompressed, fits the topic compressed as the original did: written whole.
      name: '5 MB gzip bomb',
      message: { key: 'd00010', value: '0'.repeat(5 * 2 ** 20) },
      compression: CompressionTypes.GZIP,
      deadLetter: { fqcn: 'KafkaMessageLimitError', contains: 'limits.maxValueBytes' },
    },
    {
      name: '100k keys',
      message: { key: 'd00002', value: manyKeys(100_000) },
      deadLetter: { fqcn: 'KafkaMessageLimitError', contains: 'limits.maxJsonKeys' },
    },
    {
      name: '10,000-deep nesting',
      message: { key: 'd00003', value: '['.repeat(10_000) + ']'.repeat(10_000) },
      deadLetter: { fqcn: 'KafkaMessageLimitError', contains: 'limits.maxJsonDepth' },
    },
    {
      name: '900 KB extra field',
      message: { key: 'd00004', value: JSON.stringify(position('d00004', { junk: 'x'.repeat(900 * 1024) })) },
      deadLetter: { fqcn: 'BadRequestException', contains: 'property junk should not exist' },
    },
    {
      name: 'ts: 9e15',
      message: { key: 'c0ffee', value: JSON.stringify(position('c0ffee', { ts: 9e15 })) },
      deadLetter: { fqcn: 'FuturePositionError', contains: 'FLIGHTS_MAX_CLOCK_SKEW_MS' },
    },
    {
      name: '__proto__ header',
      message: { key: 'd00006', value: JSON.stringify(position('d00006')), headers: protoHeader('x') },
    },
    {
      name: 'ANSI bytes and a newline in the key',
      message: { key: ANSI_KEY, value: JSON.stringify(position('d00007')) },
    },
    {
      name: 'ANSI bytes and a newline in bad JSON',
      message: { key: 'd00008', value: '\u001b[2J{"icao24":\nFAKE LOG LINE json' },
      deadLetter: { fqcn: 'KafkaPayloadDecodeError', contains: 'is not valid JSON' },
    },
    {
      name: 'ANSI bytes and a newline in a JSON key',
      message: {
        key: 'd00009',
        value: JSON.stringify({ ...position('d00009'), '\u001b[31mk\nFAKE LOG LINE prop': 1 }),
      },
      deadLetter: { fqcn: 'BadRequestException', contains: 'should not exist' },
    },
  ];
}

/** A header named `__proto__` as an own property (an object literal would set the prototype instead). */
function protoHeader(value: string | string[]): IHeaders {
  const headers: IHeaders = {};
  Object.defineProperty(headers, '__proto__', { value, enumerable: true });
  return headers;
}

interface HealthPoll {
  ms: number;
  status: number | string;
}

/** GET /health every 250 ms until stopped: status and latency of each answer (or why none came). */
function pollHealth(port: number) {
  const polls: HealthPoll[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const started = performance.now();
      const status = await fetch(`http://127.0.0.1:${port}/health`, {
        signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS + 5_000),
      }).then(
        (response) => response.status,
        (error: Error) => error.name,
      );
      polls.push({ ms: performance.now() - started, status });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return {
    polls,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/**
 * The service's resident memory and its longest event-loop block since the previous scrape (prom-client resets
 * its event-loop histogram on every collection).
 */
async function processMetrics(port: number): Promise<{ rss: number; loopMaxMs: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sample = (name: string) => {
    const match = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
    if (!match) throw new Error(`${name} missing from /metrics`);
    return Number(match[1]);
  };
  return {
    rss: sample('process_resident_memory_bytes'),
    loopMaxMs: sample('nodejs_eventloop_lag_max_seconds') * 1000,
  };
}

function headerText(message: KafkaMessage, name: string): string | undefined {
  const value = message.headers?.[name];
  return value === undefined ? undefined : String(value);
}

/** Offsets and timestamps in dead-letter headers are 8-byte big-endian numbers, as Spring writes them. */
function headerInt64(message: KafkaMessage, name: string): string | undefined {
  const value = message.headers?.[name];
  return Buffer.isBuffer(value) ? value.readBigInt64BE().toString() : undefined;
}

/**
 * Reads a dead-letter topic with the library's own kafkajs instance: its header decoder is linear, where plain
 * kafkajs would block this process for seconds on the 10,000-header dead letter.
 */
async function readDeadLetters(topic: string, count: number): Promise<KafkaMessage[]> {
  const kafka = new LibraryKafka({
    clientId: 'e2e-dlt',
    brokers: testBrokers(),
    logLevel: KafkaLogLevel.NOTHING,
    retry: TEST_RETRY,
  });
  const consumer = kafka.consumer({
    groupId: uniqueName('dlt-reader'),
    allowAutoTopicCreation: false,
    retry: TEST_RETRY,
  });
  const messages: KafkaMessage[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await waitFor(`${count} dead letter(s) on ${topic}`, 30_000, () => messages.length >= count);
    // Anything written twice would arrive right behind.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

describe('hostile messages', () => {
  const kafka = new KafkaTestClient();
  const services: ServiceProcess[] = [];
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(services.splice(0).map((s) => s.stop('SIGKILL')));
    while (apps.length > 0) await apps.pop()!.close();
  });
  afterAll(() => kafka.closeAll());

  test('the built service dead-letters or handles each one, within bounds, while everything else keeps going', async () => {
    const airnavTopic = uniqueName('hostile-airnav');
    const flight24Topic = uniqueName('hostile-flight24');
    const airnavGroup = uniqueName('hostile-airnav');
    for (const topic of [airnavTopic, `${airnavTopic}-dlt`, flight24Topic, `${flight24Topic}-dlt`]) {
      await kafka.createTopic(topic, PARTITIONS);
    }
    const lines: string[] = [];
    /** When each airnav offset was reported handled ("partition@offset" -> ms since epoch). */
    const handledAt = new Map<string, number>();
    const service = new ServiceProcess(
      {
        KAFKA_BROKERS: testBrokers().join(','),
        AIRNAV_TOPIC: airnavTopic,
        AIRNAV_GROUP_ID: airnavGroup,
        FLIGHT24_TOPIC: flight24Topic,
        FLIGHT24_GROUP_ID: uniqueName('hostile-flight24'),
        KAFKA_HEALTH_TIMEOUT_MS: String(HEALTH_TIMEOUT_MS),
      },
      (line) => {
        lines.push(line);
        const match = /Processed message \(topic=([^,]+), partition=(\d+), offset=(\d+)/.exec(line);
        if (match?.[1] === airnavTopic) handledAt.set(`${match[2]}@${match[3]}`, Date.now());
      },
    );
    services.push(service);
    await service.waitUntilListening();
    await kafka.waitForStableGroup(airnavGroup, 1);
    const port = service.port;
    const producer = await kafka.producer();

    // Warm-up: one position per partition, then the memory baseline.
    await producer.send({
      topic: airnavTopic,
      acks: -1,
      messages: Array.from({ length: PARTITIONS }, (_, p) => ({
        partition: p,
        key: `e0000${p}`,
        value: JSON.stringify(position(`e0000${p}`)),
      })),
    });
    await waitFor('the warm-up positions handled', 30_000, () => handledAt.size >= PARTITIONS);
    const { rss: rssBefore } = await processMetrics(port);
    const health = pollHealth(port);

    // Partition 0: an aircraft's real position, every hostile message, the aircraft's next real position, and a
    // sentinel; partitions 1 and 2 get a real position every 200 ms meanwhile.
    const flowing: { partition: number; offset: string; producedAt: number }[] = [];
    let flowingOn = true;
    const flow = (async () => {
      for (let i = 0; flowingOn; i++) {
        for (const partition of [1, 2]) {
          const icao24 = (0xf00000 + i * 2 + partition).toString(16);
          const producedAt = Date.now();
          const [meta] = await producer.send({
            topic: airnavTopic,
            acks: -1,
            messages: [{ partition, key: icao24, value: JSON.stringify(position(icao24)) }],
          });
          flowing.push({ partition, offset: meta.baseOffset!, producedAt });
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();

    const send = async (message: Message, compression?: number) => {
      const [meta] = await producer.send({
        topic: airnavTopic,
        acks: -1,
        compression,
        messages: [{ ...message, partition: 0 }],
      });
      return meta.baseOffset!;
    };
    const started = Date.now();
    await send({ key: 'c0ffee', value: JSON.stringify(position('c0ffee', { lat: 40 })) });
    const hostile = hostileMessages();
    const offsets = new Map<string, Hostile>();
    for (const item of hostile) offsets.set(await send(item.message, item.compression), item);
    await send({ key: 'c0ffee', value: JSON.stringify(position('c0ffee', { lat: 48 })) });
    const sentinel = await send({ key: 'a00000', value: JSON.stringify(position('a00000')) });

    await waitFor('partition 0 to get past every hostile message', HANDLED_WITHIN_MS + 30_000, () =>
      handledAt.has(`0@${sentinel}`),
    );
    const partitionZeroMs = Date.now() - started;
    flowingOn = false;
    await flow;
    await waitFor('every position on partitions 1 and 2 handled', FLOWING_WITHIN_MS, () =>
      flowing.every((f) => handledAt.has(`${f.partition}@${f.offset}`)),
    );
    await health.stop();
    const { rss: rssAfter, loopMaxMs } = await processMetrics(port);

    // Dead letters: exactly the hostile messages that must not be handled, once each, with the reason.
    const expectedDead = [...offsets].filter(([, item]) => item.deadLetter);
    const dlt = await readDeadLetters(`${airnavTopic}-dlt`, expectedDead.length);
    const deadByOffset = new Map(dlt.map((m) => [headerInt64(m, DLT_HEADERS.originalOffset), m]));
    expect(dlt).toHaveLength(expectedDead.length);
    const report: string[] = [];
    for (const [offset, item] of expectedDead) {
      const dead = deadByOffset.get(offset);
      expect([item.name, dead !== undefined]).toEqual([item.name, true]);
      expect([item.name, headerText(dead!, DLT_HEADERS.exceptionFqcn)]).toEqual([
        item.name,
        item.deadLetter!.fqcn,
      ]);
      expect(headerText(dead!, DLT_HEADERS.exceptionMessage)).toContain(item.deadLetter!.contains);
      // Whole, never a stub: each fits its topic, the gzip bomb compressed.
      expect([item.name, headerText(dead!, DLT_STUB_HEADERS.reason)]).toEqual([item.name, undefined]);
      const latency = Number(dead!.timestamp) - Number(headerInt64(dead!, DLT_HEADERS.originalTimestamp));
      expect([item.name, latency < HANDLED_WITHIN_MS]).toEqual([item.name, true]);
      report.push(`${item.name}: dead-lettered after ${latency} ms`);
    }
    // Handled: the `__proto__` header and the ANSI key went through the pipeline like any message.
    for (const [offset, item] of offsets) {
      if (item.deadLetter) continue;
      expect([item.name, handledAt.has(`0@${offset}`)]).toEqual([item.name, true]);
    }
    // The aircraft behind `ts: 9e15` is not frozen: its next real position is the one served.
    const flights = (await (await fetch(`http://127.0.0.1:${port}/airnav/flights?limit=1000`)).json()) as {
      icao24: string;
      lat: number;
    }[];
    expect(flights.find((f) => f.icao24 === 'c0ffee')?.lat).toBe(48);
    // A whitelisted DTO: nothing of the 900 KB field, nor of any other hostile payload, is stored.
    expect(flights.map((f) => f.icao24)).not.toContain('d00004');
    expect(JSON.stringify(flights).length).toBeLessThan(1_000 * 200);

    // The figures first, so that a failed bound below still shows all of them.
    const flowDelays = flowing.map((f) => handledAt.get(`${f.partition}@${f.offset}`)! - f.producedAt);
    const slowestHealthMs = Math.max(...health.polls.map((p) => p.ms));
    console.info(
      [
        `hostile mix on partition 0 done in ${partitionZeroMs} ms`,
        ...report,
        `partitions 1 and 2: ${flowing.length} positions, slowest ${Math.max(...flowDelays)} ms`,
        `/health: ${health.polls.length} answers, slowest ${Math.round(slowestHealthMs)} ms`,
        `longest event-loop block during the mix ${Math.round(loopMaxMs)} ms`,
        `RSS before ${(rssBefore / 2 ** 20).toFixed(0)} MiB, after ${(rssAfter / 2 ** 20).toFixed(0)} MiB`,
      ].join('\n'),
    );

    // The other partitions flowed while partition 0 worked through the hostile messages.
    expect(Math.max(...flowDelays)).toBeLessThan(FLOWING_WITHIN_MS);
    // /health answered every time, within its timeout.
    expect(health.polls.length).toBeGreaterThan(0);
    expect(health.polls.filter((p) => p.status !== 200)).toEqual([]);
    expect(slowestHealthMs).toBeLessThan(HEALTH_TIMEOUT_MS + HEALTH_SLACK_MS);
    // No message blocked the service's event loop for as long as the health check may take.
    expect(loopMaxMs).toBeLessThan(HEALTH_TIMEOUT_MS);
    expect(rssAfter).toBeLessThan(MAX_RSS_BYTES);

    // No log line carries a raw control character from a message, and no forged line starts a line.
    const logged = lines.join('\n');
    // eslint-disable-next-line no-control-regex -- looking for raw control characters is the point
    expect(lines.filter((line) => /[\u0000-\u0008\u000b-\u001f\u007f]/.test(line))).toEqual([]);
    expect(lines.filter((line) => line.startsWith('FAKE LOG LINE'))).toEqual([]);
    expect(logged).toContain('key=\\x1b[31mEVIL\\x1b[0m\\x0aFAKE LOG LINE key');
  });

  test('a stack overflow in the pipeline (limits raised) is dead-lettered at once, not retried', async () => {
    const groupId = uniqueName('overflow');
    const topic = uniqueName('overflow');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const handled: unknown[] = [];
    class Nested {
      a?: unknown;
    }

    @Controller()
    class OverflowController {
      // Depth bound lifted, so the 10,000 levels reach ValidationPipe, whose plainToInstance recurses per level.
      // A retry would come after 5 s at the earliest.
      @KafkaHandler('${TOPIC}', {
        limits: { maxJsonDepth: 1_000_000 },
        retry: { attempts: 3, initialDelayMs: 5_000, maxDelayMs: 10_000 },
      })
      handle(@Payload() payload: Nested) {
        handled.push(payload);
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [OverflowController],
    })
    class OverflowModule {}

    const { app } = await startTestApp([OverflowModule]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    const depth = 10_000;
    const producedAt = Date.now();
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key: 'deep', value: '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) }],
    });
    const [dead] = await readDeadLetters(`${topic}-dlt`, 1);
    expect(headerText(dead, DLT_HEADERS.exceptionFqcn)).toBe('RangeError');
    expect(headerText(dead, DLT_HEADERS.exceptionMessage)).toContain('Maximum call stack size exceeded');
    expect(Number(dead.timestamp) - producedAt).toBeLessThan(5_000);
    expect(handled).toEqual([]);
    await kafka.waitForCommittedToEnd(groupId, topic);
  });

  test('a header named __proto__ reaches the handler as a header, alone or repeated', async () => {
    const groupId = uniqueName('proto');
    const topic = uniqueName('proto');
    await kafka.createTopic(topic, 1);
    const seen: { proto: unknown; prototype: unknown; other: unknown }[] = [];

    @Controller()
    class HeadersController {
      @KafkaHandler('${TOPIC}')
      handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext) {
        seen.push({
          proto: ctx.headers['__proto__'],
          prototype: Object.getPrototypeOf(ctx.headers),
          other: ctx.headers.other,
        });
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [HeadersController],
    })
    class HeadersModule {}

    const { app } = await startTestApp([HeadersModule], {}, [], { globalValidation: false });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    await producer.send({
      topic,
      acks: -1,
      messages: [
        { value: '{}', headers: { ...protoHeader('once'), other: 'o' } },
        { value: '{}', headers: protoHeader(['first', 'second']) },
      ],
    });
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seen).toEqual([
      { proto: 'once', prototype: null, other: 'o' },
      { proto: ['first', 'second'], prototype: null, other: undefined },
    ]);
  });
});
