/**
 * Outside-in probe 6: large records from a plain Java producer (max.request.size raised) on topics whose
 * max.message.bytes was raised, failing their handlers, through retry and dead-letter topics. See
 * docs/RELIABILITY.md, findings 21 on.
 *
 * The spec starts its own broker on KAFKA_OUTSIDE6_PORT (19942; controller +1: fixed, like the other specs' own
 * brokers, so parallel checkouts choose theirs and a failure names the port) and stops it: it lowers the broker's
 * default max.message.bytes (`message.max.bytes`, a dynamic broker setting, as `kafka-configs` alters it) so that
 * records above it stay small, which no other spec's broker should see.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  DLT_HEADERS,
  type KafkaGroupContext,
  KafkaHandler,
  KafkaModule,
  type KafkaRetryOptions,
} from 'nest-kafka-groups';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { ConfigResourceTypes } from 'kafkajs';
import { localSettings, startBroker, stopBroker } from '../scripts/kafka-local-lib.mjs';
import { INTEROP_CONSUMER_SOURCE, KAFKA_LIB } from './support/java/java-consumer.js';
import { expectPortsFree, javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

const JAVA_PRODUCER_SOURCE = join(INTEROP_CONSUMER_SOURCE, '..', 'LargeProducer.java');

/** The broker's default max.message.bytes here: what a topic created without the setting takes. */
const BROKER_DEFAULT_BYTES = 64 * 1024;
/** The source topics' max.message.bytes, raised above the broker's default. */
const SOURCE_BYTES = 4 * BROKER_DEFAULT_BYTES;

interface Delivery {
  seq: number;
  topic: string;
  attempt: number;
  bytes: number;
}

/** Records from the Java producer: see LargeProducer.java for the arguments (`codecs` comma-separated). */
function javaProduce(
  brokers: string,
  topic: string,
  codecs: string,
  pad: 'repeat' | 'random',
  valueBytes: number,
  seqs: number[],
): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'java',
      [
        '-Xmx256m',
        '-XX:TieredStopAtLevel=1',
        '-cp',
        join(KAFKA_LIB, '*'),
        JAVA_PRODUCER_SOURCE,
        brokers,
        topic,
        codecs,
        pad,
        String(valueBytes),
        seqs.join(','),
      ],
      { timeout: 90_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
}

const suite = javaAvailable() ? describe : describe.skip;

suite('outside-in 6: large records, retry and dead-letter topics', () => {
  const port = Number(process.env.KAFKA_OUTSIDE6_PORT ?? 19942);
  const settings = localSettings({
    ...process.env,
    KAFKA_BROKERS: '',
    KAFKA_NODES: '1',
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(port + 1),
  });
  const brokers = settings.localAddress;
  let started = false;
  const kafka = new KafkaTestClient({ brokers: [brokers], clientId: 'outside-in-6' });
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    await expectPortsFree([port, port + 1], 'KAFKA_OUTSIDE6_PORT');
    // Before the start: a start cut off by the hook's timeout leaves a broker that afterAll must stop.
    started = true;
    await startBroker({}, settings);
    const admin = await kafka.admin();
    // The broker's own dynamic setting (its node id), as `kafka-configs --entity-type brokers` alters it.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.BROKER,
          name: '1',
          configEntries: [{ name: 'message.max.bytes', value: String(BROKER_DEFAULT_BYTES) }],
        },
      ],
    });
  }, 240_000);

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await kafka.closeAll();
    if (started) await stopBroker({}, settings);
  }, 120_000);

  /** An application whose one handler fails every delivery of the records whose seq is in `failing`. */
  async function startFailing(
    groupId: string,
    topic: string,
    retry: Partial<KafkaRetryOptions>,
    failing: number[],
  ) {
    const deliveries: Delivery[] = [];
    @Controller()
    class LargeController {
      @KafkaHandler('${TOPIC}', { retry })
      handle(@Payload() payload: { seq: number; pad: string }, @Ctx() ctx: KafkaGroupContext) {
        deliveries.push({
          seq: payload.seq,
          topic: ctx.topic,
          attempt: ctx.attempt,
          bytes: payload.pad.length,
        });
        if (failing.includes(payload.seq)) throw new Error(`seq ${payload.seq} fails`);
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [LargeController],
    })
    class LargeModule {}
    const { app } = await startTestApp([LargeModule], { brokers: [brokers] });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    return deliveries;
  }

  test("a record just under its topic's raised max.message.bytes that fails goes whole through the retry topic and the dead-letter topic the library created", async () => {
    const groupId = uniqueName('large-retry');
    const topic = uniqueName('large-retry');
    await kafka.createTopic(topic, 1, [{ name: 'max.message.bytes', value: String(SOURCE_BYTES) }]);
    // The retry and dead-letter records add Spring's headers (the stack trace among them) to a record that just fit.
    const valueBytes = SOURCE_BYTES - 2048;
    const deliveries = await startFailing(groupId, topic, { topics: true, delaysMs: [50] }, [0]);
    await javaProduce(brokers, topic, 'none', 'random', valueBytes, [0]);
    await javaProduce(brokers, topic, 'none', 'random', 100, [1]);
    await waitFor('seq 1 in its handler', 20_000, () => deliveries.some((d) => d.seq === 1));
    await kafka.waitForCommittedToEnd(groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, `${topic}-retry`);
    const pad = valueBytes - '{"seq":0,"pad":""}'.length;
    expect(deliveries.sort((a, b) => a.seq - b.seq || a.attempt - b.attempt)).toEqual([
      { seq: 0, topic, attempt: 1, bytes: pad },
      { seq: 0, topic: `${topic}-retry`, attempt: 2, bytes: pad },
      { seq: 1, topic, attempt: 1, bytes: 100 - '{"seq":1,"pad":""}'.length },
    ]);
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.key?.toString()).toBe('k0');
    expect(dead.value?.length).toBe(valueBytes);
    expect(dead.headers?.[DLT_HEADERS.exceptionMessage]?.toString()).toBe('seq 0 fails');
  }, 90_000);

  test('records larger than their topic takes, in gzip, lz4 and zstd batches of a Java producer, that fail go whole through the retry topic and the dead-letter topic', async () => {
    const groupId = uniqueName('compressed');
    const topic = uniqueName('compressed');
    // The broker's default size: the source topic takes these records only compressed.
    await kafka.createTopic(topic, 1);
    const valueBytes = 2 * BROKER_DEFAULT_BYTES;
    const deliveries = await startFailing(groupId, topic, { topics: true, delaysMs: [50] }, [0, 1, 2]);
    await javaProduce(brokers, topic, 'gzip,lz4,zstd', 'repeat', valueBytes, [0, 1, 2]);
    await javaProduce(brokers, topic, 'none', 'repeat', 100, [3]);
    await waitFor('seq 3 in its handler', 20_000, () => deliveries.some((d) => d.seq === 3));
    await kafka.waitForCommittedToEnd(groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, `${topic}-retry`);
    expect(
      deliveries
        .sort((a, b) => a.seq - b.seq || a.attempt - b.attempt)
        .map((d) => `${d.seq} ${d.topic === topic ? 'main' : d.topic.slice(topic.length)} #${d.attempt}`),
    ).toEqual([
      '0 main #1',
      '0 -retry #2',
      '1 main #1',
      '1 -retry #2',
      '2 main #1',
      '2 -retry #2',
      '3 main #1',
    ]);
    const dead = await kafka.readMessages(`${topic}-dlt`, 3);
    expect(dead.map((m) => [m.key?.toString(), m.value?.length])).toEqual(
      ['k0', 'k1', 'k2'].map((key) => [key, valueBytes]),
    );
  }, 90_000);
});
