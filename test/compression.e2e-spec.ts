/**
 * Compressed record batches (issue 16 finding 1): what Java producers write with each codec is consumed, what the
 * library writes with each codec is read by Java, and a batch over the decompression bound is dead-lettered whole
 * while the rest of its partition keeps flowing. README "Compression"; docs/RELIABILITY.md, carried fixes.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { createKafkaClient, zstdCompressionAvailable } from 'nest-kafka-groups/testing';
import {
  DLT_HEADERS,
  type KafkaCompression,
  KafkaGroupContext,
  KafkaHandler,
  KafkaModule,
  KafkaProducer,
} from 'nest-kafka-groups';
import { INTEROP_CONSUMER_SOURCE, JavaConsumer, KAFKA_LIB } from './support/java/java-consumer.js';
import { testBrokers, TEST_RETRY, KafkaTestClient, uniqueName } from 'nest-kafka-groups/testing';
import { javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

const JAVA_PRODUCER_SOURCE = join(INTEROP_CONSUMER_SOURCE, '..', 'CompressedProducer.java');
const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;

interface Delivery {
  seq: number;
  partition: number;
}
const deliveries: Delivery[] = [];

@Controller()
class CompressedController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext) {
    deliveries.push({ seq: payload.seq, partition: ctx.partition });
  }
}

function groupModule(groupId: string, topic: string) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
    controllers: [CompressedController],
  })
  class CompressedGroupModule {}
  return CompressedGroupModule;
}

function javaProduce(topic: string, count: number, codecs: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'java',
      [
        '-Xmx256m',
        '-cp',
        join(KAFKA_LIB, '*'),
        JAVA_PRODUCER_SOURCE,
        testBrokers().join(','),
        topic,
        String(count),
        codecs.join(','),
      ],
      { timeout: 120_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
}

const seqs = (count: number) => Array.from({ length: count }, (_, i) => i);

(javaAvailable() ? describe : describe.skip)('compressed record batches', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    deliveries.length = 0;
  });
  afterAll(() => kafka.closeAll());

  test('a Java producer writes with gzip, snappy, lz4 and zstd: every record processed once, none dead-lettered', async () => {
    const topic = uniqueName('compressed-java');
    const group = uniqueName('compressed-group');
    const count = 200;
    await kafka.createTopic(topic, 3);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const output = await javaProduce(topic, count, CODECS);
    expect(output.trim().split('\n')).toEqual([...CODECS.map((codec) => `SENT ${codec} ${count}`), 'DONE']);

    const { app } = await startTestApp([groupModule(group, topic)]);
    apps.push(app);
    await kafka.waitForCommittedToEnd(group, topic, 60_000);
    expect(deliveries.map((d) => d.seq).sort((a, b) => a - b)).toEqual(seqs(CODECS.length * count));
    const offsets = await (await kafka.admin()).fetchTopicOffsets(`${topic}-dlt`);
    expect(offsets.map((o) => o.high)).toEqual(['0']);
  }, 180_000);

  test('KafkaProducer writes with each codec (compression option): a Java consumer reads every record', async () => {
    const topic = uniqueName('compressed-nest');
    await kafka.createTopic(topic, 2);
    const codecs: KafkaCompression[] = [
      'none',
      'gzip',
      'snappy',
      'lz4',
      ...(zstdCompressionAvailable ? ['zstd' as const] : []),
    ];
    const count = 100;
    for (const [k, compression] of codecs.entries()) {
      const options = { brokers: testBrokers(), clientRetry: TEST_RETRY, compression };
      const producer = new KafkaProducer(createKafkaClient(options), options);
      await producer.sendMany(
        topic,
        seqs(count).map((i) => ({ key: `k${i}`, value: { seq: k * count + i, pad: 'y'.repeat(300) } })),
      );
      await producer.onApplicationShutdown();
    }

    const java = new JavaConsumer({
      brokers: testBrokers(),
      groupId: uniqueName('java-reader'),
      topic,
      maxRuntimeMs: 90_000,
    });
    try {
      await java.waitUntil(
        'every record read by Java',
        90_000,
        () => java.records.length >= codecs.length * count,
      );
      const read = java.records
        .map((r) => (JSON.parse(r.value) as { seq: number }).seq)
        .sort((a, b) => a - b);
      expect(read).toEqual(seqs(codecs.length * count));
    } finally {
      await java.stop();
    }
  }, 180_000);

  test('a gzip batch over maxDecompressedBatchBytes: dead-lettered whole as one record, the partition goes on', async () => {
    const topic = uniqueName('gzip-bomb');
    const group = uniqueName('gzip-bomb-group');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const producer = await kafka.producer();
    const value = (seq: number, pad = '') => JSON.stringify({ seq, pad });
    await producer.send({ topic, messages: [{ value: value(0) }] });
    // 4 MB of JSON that gzip shrinks to a few KB: over the 1 MB bound once decompressed.
    await producer.send({
      topic,
      compression: 1,
      messages: [
        { value: value(1, ' '.repeat(2 * 1024 * 1024)) },
        { value: value(2, ' '.repeat(2 * 1024 * 1024)) },
      ],
    });
    await producer.send({ topic, messages: [{ value: value(3) }] });

    const { app } = await startTestApp([groupModule(group, topic)], {
      maxDecompressedBatchBytes: 1024 * 1024,
    });
    apps.push(app);
    await kafka.waitForCommittedToEnd(group, topic, 60_000);
    expect(deliveries.map((d) => d.seq)).toEqual([0, 3]);

    const [deadLetter] = await kafka.readMessages(`${topic}-dlt`, 1);
    const header = (name: string) => String(deadLetter.headers?.[name]);
    expect(header(DLT_HEADERS.exceptionFqcn)).toBe('KafkaBatchDecodeError');
    expect(header(DLT_HEADERS.exceptionMessage)).toBe(
      'A gzip record batch (offsets 1 to 2) decompresses to more than the bound of 1048576 bytes (maxDecompressedBatchBytes)',
    );
    expect(deadLetter.headers?.[DLT_HEADERS.originalOffset]).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 2]));
    expect(deadLetter.value!.length).toBeLessThan(64 * 1024); // the compressed batch as it came
  }, 120_000);
});
