/**
 * Outside-in probe 2 (docs/RELIABILITY.md): producers, topics and clients the other specs do not contain, against a
 * group of this library on a real broker. Java transactions left open across partitions with another transactional
 * producer's commits and aborts in between; Java headers (a key twice, binary values), a null key, a tombstone on a
 * validated DTO and a LogAppendTime topic; a compacted topic whose offsets have gaps, and records deleted under a
 * running group.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { IsInt, Min } from 'class-validator';
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
  seq: number | null;
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
  async handle(@Payload() payload: SeqDto | null, @Ctx() ctx: KafkaGroupContext): Promise<void> {
    seen.push({
      seq: payload === null ? null : payload.seq,
      partition: ctx.partition,
      offset: ctx.offset,
      key: ctx.key,
      timestamp: ctx.timestamp,
      headers: { ...ctx.message.headers },
      decoded: { ...ctx.headers },
    });
    if (payload !== null && payload.seq === gate.seq) await new Promise<void>((r) => (gate.release = r));
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
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => this.child.once('close', resolve));
  }

  async waitForLine(line: string, timeoutMs = 90_000): Promise<void> {
    await waitFor(`the Java producer printing ${line}`, timeoutMs, () => {
      if (this.lines.includes(line)) return true;
      if (this.child.exitCode !== null) throw new Error(`the Java producer exited ${this.child.exitCode}\n${this.stderr}`);
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

const bySeq = (a: number | null, b: number | null) => (a ?? -1) - (b ?? -1);

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

  async function start(topic: string, partitions: number, configEntries: { name: string; value: string }[] = []) {
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
    expect(held.partitions.map(({ partition, committedOffset, logEndOffset, lag }) => ({
      partition,
      committedOffset,
      logEndOffset,
      lag,
    }))).toEqual([
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
});
