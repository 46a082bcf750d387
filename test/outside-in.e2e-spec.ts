/**
 * Outside-in probe 2 (docs/RELIABILITY.md): producers, topics and clients the other specs do not contain, against a
 * group of this library on a real broker. Java transactions left open across partitions with another transactional
 * producer's commits and aborts in between; Java headers (a key twice, binary values), a null key, a tombstone on a
 * validated DTO and a LogAppendTime topic; a compacted topic whose offsets have gaps, and records deleted under a
 * running group.
 */
import { afterAll, afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { ConsoleLogger, Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { IsInt, Min } from 'class-validator';
import kafkajs from 'kafkajs';
import {
  DLT_HEADERS,
  type KafkaGroupContext,
  KafkaHandler,
  KafkaModule,
  KafkaStatusModule,
  KafkaStatusService,
} from 'nest-kafka-groups';
import { KafkaTestClient, testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { INTEROP_CONSUMER_SOURCE, KAFKA_LIB } from './support/java/java-consumer.js';
import { javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

const PRODUCER_SOURCE = join(INTEROP_CONSUMER_SOURCE, '..', 'OutsideProducer.java');

class SeqDto {
  @IsInt() @Min(0) seq!: number;
}

interface Seen {
  seq: number;
  partition: number;
  offset: string;
  key: string | undefined;
  timestamp: string;
  headers: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
  decoded: Record<string, string | string[]>;
}

const seen: Seen[] = [];
/** Blocks the handler of the seq it names until released (null: none). */
const gate: { seq: number | null; release?: () => void } = { seq: null };

@Controller()
class ProbeController {
  @KafkaHandler('${TOPIC}')
  // `SeqDto` alone: a union type would be emitted as Object, and ValidationPipe would not validate.
  async handle(@Payload() payload: SeqDto, @Ctx() ctx: KafkaGroupContext): Promise<void> {
    seen.push({
      seq: payload.seq,
      partition: ctx.partition,
      offset: ctx.offset,
      key: ctx.key,
      timestamp: ctx.timestamp,
      headers: { ...ctx.message.headers },
      decoded: { ...ctx.headers },
    });
    if (payload.seq === gate.seq) await new Promise<void>((r) => (gate.release = r));
  }
}

function feature(groupId: string, topic: string) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
    controllers: [ProbeController],
  })
  class ProbeFeature {}
  return ProbeFeature;
}

/** The Java producer of a scenario, its stdout lines collected; `send` writes a line to its stdin. */
class JavaProducer {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';

  constructor(topic: string, scenario: string) {
    this.child = spawn('java', [
      '-Xmx256m',
      '-cp',
      join(KAFKA_LIB, '*'),
      PRODUCER_SOURCE,
      testBrokers().join(','),
      topic,
      scenario,
    ]);
    createInterface({ input: this.child.stdout }).on('line', (line) => this.lines.push(line));
    this.child.stderr.on(
      'data',
      (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)),
    );
    this.exited = new Promise((resolve) => this.child.once('close', resolve));
  }

  async waitForLine(line: string, timeoutMs = 90_000): Promise<void> {
    await waitFor(`the Java producer printing ${line}`, timeoutMs, () => {
      if (this.lines.includes(line)) return true;
      if (this.child.exitCode !== null)
        throw new Error(`the Java producer exited ${this.child.exitCode}\n${this.stderr}`);
      return false;
    });
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

const bySeq = (a: number, b: number) => a - b;

(javaAvailable() ? describe : describe.skip)('outside-in probe 2', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];
  const producers: JavaProducer[] = [];

  afterEach(async () => {
    gate.release?.();
    Object.assign(gate, { seq: null, release: undefined });
    for (const producer of producers.splice(0)) producer.kill();
    while (apps.length > 0) await apps.pop()!.close();
    seen.length = 0;
  });
  afterAll(() => kafka.closeAll());
  let warnings: jest.SpiedFunction<ConsoleLogger['warn']>;
  beforeEach(() => {
    warnings = jest.spyOn(ConsoleLogger.prototype, 'warn');
  });
  afterEach(() => warnings.mockRestore());

  async function start(
    topic: string,
    partitions: number,
    configEntries: { name: string; value: string }[] = [],
  ) {
    const groupId = uniqueName('outside');
    await kafka.createTopic(topic, partitions, configEntries);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const { app } = await startTestApp([feature(groupId, topic)], {}, [KafkaStatusModule]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    return { groupId, app };
  }

  test('a Java transaction left open on two partitions, another producer committing and aborting meanwhile: the group waits at the last stable offset, then handles every committed record once and commits to the log end', async () => {
    const topic = uniqueName('open-tx');
    const { groupId, app } = await start(topic, 2);
    const java = new JavaProducer(topic, 'open-transaction');
    producers.push(java);
    await java.waitForLine('B DONE');
    // Plain records above the open transaction: read_committed holds them back as well.
    await kafka.produce(topic, [
      { key: 'k100', value: JSON.stringify({ seq: 100 }), partition: 0 },
      { key: 'k101', value: JSON.stringify({ seq: 101 }), partition: 1 },
    ]);

    await waitFor('the first transaction handled', 30_000, () => seen.length >= 4);
    const status = app.get(KafkaStatusService);
    // The group is at the last stable offset of each partition: nothing above it may arrive while A is open.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(seen.map((s) => s.seq).sort(bySeq)).toEqual([0, 1, 2, 3]);
    const held = await status.offsets(groupId, [topic]);
    // The status reads the log end as a read_committed client does (the last stable offset): lag 0 while the
    // transaction is open, though records are waiting behind it.
    expect(
      held.partitions.map(({ partition, committedOffset, logEndOffset, lag }) => ({
        partition,
        committedOffset,
        logEndOffset,
        lag,
      })),
    ).toEqual([
      { partition: 0, committedOffset: 5, logEndOffset: 5, lag: 0 },
      { partition: 1, committedOffset: 5, logEndOffset: 5, lag: 0 },
    ]);

    java.send('commit');
    await java.waitForLine('DONE');
    expect(await java.exited).toBe(0);
    // p0: 0 2 C 4 A 6 8 A 9 C 100 C = 12 offsets; p1: 1 3 C 5 A 7 10 C 101 C = 10.
    const ends = await kafka.waitForCommittedToEnd(groupId, topic);
    expect(ends.map((o) => o.end)).toEqual([12, 10]);
    expect(seen.map((s) => s.seq).sort(bySeq)).toEqual([0, 1, 2, 3, 6, 7, 9, 10, 100, 101]);
    // In offset order per partition: the open transaction's records before the ones committed after them.
    expect(seen.filter((s) => s.partition === 0).map((s) => s.seq)).toEqual([0, 2, 6, 9, 100]);
    expect(seen.filter((s) => s.partition === 1).map((s) => s.seq)).toEqual([1, 3, 7, 10, 101]);
    const after = await status.offsets(groupId, [topic]);
    expect(after.partitions.map((p) => p.lag)).toEqual([0, 0]);
    const dlt = await (await kafka.admin()).fetchTopicOffsets(`${topic}-dlt`);
    expect(dlt.map((o) => o.high)).toEqual(['0']);
  }, 150_000);

  test('from Java: a header key twice and binary header values, a null key, on a LogAppendTime topic; a tombstone on a validated DTO is dead-lettered', async () => {
    const topic = uniqueName('java-headers');
    const { groupId } = await start(topic, 1, [{ name: 'message.timestamp.type', value: 'LogAppendTime' }]);
    const java = new JavaProducer(topic, 'headers');
    producers.push(java);
    await java.waitForLine('DONE');
    expect(await java.exited).toBe(0);
    // A tombstone and a record whose create time is years old: the broker stamps both with its append time.
    const before = Date.now();
    await kafka.produce(topic, [
      { key: 'gone', value: null, partition: 0 },
      { key: 'k3', value: JSON.stringify({ seq: 3 }), partition: 0, timestamp: '1000000000000' },
    ]);
    await kafka.waitForCommittedToEnd(groupId, topic);

    expect(seen.map((s) => s.seq)).toEqual([0, 1, 3]);
    const [first, nullKey, old] = seen;
    // Raw headers: both values of the repeated key, in order, byte for byte; decoded: UTF-8 text of each.
    expect(first.headers.dup).toEqual([Buffer.from('one'), Buffer.from([0xff, 0xfe, 0x00])]);
    expect(first.headers.bin).toEqual(Buffer.from([0xc3, 0x28]));
    expect(first.decoded.dup).toEqual(['one', Buffer.from([0xff, 0xfe, 0x00]).toString()]);
    expect(nullKey.key).toBeUndefined();
    // LogAppendTime: the broker's clock, not the producer's (1000000000000 is 2001).
    expect(Number(old.timestamp)).toBeGreaterThanOrEqual(before - 5_000);
    expect(Number(old.timestamp)).toBeLessThanOrEqual(Date.now());

    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.key?.toString()).toBe('gone');
    expect(dead.value).toBeNull();
    expect(dead.headers?.[DLT_HEADERS.exceptionFqcn]?.toString()).toBe('BadRequestException');
  }, 120_000);

  /**
   * The cleaner runs every log.cleaner.backoff.ms (15 s by default): a dynamic broker setting, lowered on each broker
   * for the test and put back after.
   */
  async function withFastCleaner<T>(run: () => Promise<T>): Promise<T> {
    const admin = await kafka.admin();
    const { brokers } = await admin.describeCluster();
    const set = (value: string) =>
      admin.alterConfigs({
        validateOnly: false,
        resources: brokers.map(({ nodeId }) => ({
          type: kafkajs.ConfigResourceTypes.BROKER,
          name: String(nodeId),
          configEntries: [{ name: 'log.cleaner.backoff.ms', value }],
        })),
      });
    await set('500');
    try {
      return await run();
    } finally {
      await set('15000');
    }
  }

  /** Reads the topic from offset 0 again every second until its first record is at `firstLive` or above. */
  async function waitForCleaner(topic: string, firstLive: number): Promise<void> {
    const probe = kafka.consumer({ groupId: uniqueName('cleaner-probe') });
    await probe.connect();
    await probe.subscribe({ topic, fromBeginning: true });
    let first: number | undefined;
    await probe.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (batch.messages.length > 0) first ??= Number(batch.messages[0].offset);
      },
    });
    let readAt = Date.now();
    await waitFor(`the cleaner compacting ${topic} below offset ${firstLive}`, 60_000, () => {
      if (first !== undefined && first >= firstLive) return true;
      if (Date.now() - readAt > 1_000) {
        first = undefined;
        readAt = Date.now();
        probe.seek({ topic, partition: 0, offset: '0' });
      }
      return false;
    });
    await probe.disconnect();
  }

  test("a compacted topic: offset gaps and a batch the cleaner emptied (an idempotent producer's last) are passed; records deleted under the running group: the group goes on from the new log start, naming the offsets", async () => {
    const topic = uniqueName('compacted');
    // compact,delete: DeleteRecords is refused on a topic that is only compacted.
    await kafka.createTopic(topic, 1, [
      { name: 'cleanup.policy', value: 'compact,delete' },
      { name: 'retention.ms', value: '-1' },
      { name: 'segment.ms', value: '100' },
      { name: 'min.cleanable.dirty.ratio', value: '0.01' },
      { name: 'delete.retention.ms', value: '0' },
    ]);
    const idempotent = new kafkajs.Kafka({
      brokers: testBrokers(),
      logLevel: kafkajs.logLevel.NOTHING,
    }).producer({
      idempotent: true,
      allowAutoTopicCreation: false,
    });
    await idempotent.connect();
    const json = (seq: number, key = `k${seq}`) => ({ key, value: JSON.stringify({ seq }), partition: 0 });
    try {
      // Offsets 0-2: one batch of the idempotent producer, every key written again at 3-5: the cleaner keeps the
      // batch, emptied, as that producer's last. 6 is live; 7, written after the segment aged, rolls the segment.
      await idempotent.send({ topic, acks: -1, messages: [json(0, 'a'), json(1, 'b'), json(2, 'c')] });
      await kafka.produce(topic, [json(3, 'a'), json(4, 'b'), json(5, 'c'), json(6)]);
      await new Promise((r) => setTimeout(r, 300));
      await kafka.produce(topic, [json(7)]);
      await withFastCleaner(() => waitForCleaner(topic, 3));
    } finally {
      await idempotent.disconnect();
    }

    const groupId = uniqueName('outside');
    await kafka.createTopic(`${topic}-dlt`, 1);
    const { app } = await startTestApp([feature(groupId, topic)]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seen.map((s) => [s.seq, s.offset])).toEqual([
      [3, '3'],
      [4, '4'],
      [5, '5'],
      [6, '6'],
      [7, '7'],
    ]);

    // The handler holds seq 9 (offset 9, batch 8-10) while 11-14 arrive and the log start moves to 13.
    gate.seq = 9;
    await kafka.produce(topic, [json(8), json(9), json(10)]);
    await waitFor('seq 9 in its handler', 20_000, () => gate.release !== undefined);
    await kafka.produce(
      topic,
      [11, 12, 13, 14].map((seq) => json(seq)),
    );
    const admin = await kafka.admin();
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '13' }] });
    gate.release!();
    await kafka.waitForCommittedToEnd(groupId, topic);
    // 11 and 12 were deleted before the group fetched them; what it had fetched it handles.
    expect(seen.slice(5).map((s) => s.seq)).toEqual([8, 9, 10, 13, 14]);
    const resets = warnings.mock.calls
      .map(([line]) => String(line))
      .filter((line) => line.includes('out of range'));
    expect(resets).toEqual([
      expect.stringContaining(
        `Group "${groupId}": offset 11 of ${topic}[0] is out of range; going on from the earliest retained offset 13: offsets 11 to 12 (2)`,
      ),
    ]);
  }, 150_000);
});
