/**
 * Outside-in probe 2 (docs/RELIABILITY.md): producers, topics and clients the other specs do not contain, against a
 * group of this library on a real broker. Java transactions left open across partitions with another transactional
 * producer's commits and aborts in between; Java headers (a key twice, binary values), a null key, a tombstone on a
 * validated DTO and a LogAppendTime topic; a compacted topic whose offsets have gaps, and records deleted under a
 * running group.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { ConsoleLogger, Controller, type INestApplication, Module, type Type } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { IsInt, Min } from 'class-validator';
import kafkajs from 'kafkajs';
import {
  DLT_HEADERS,
  type KafkaGroupContext,
  KafkaGroups,
  KafkaHandler,
  KafkaModule,
  KafkaStatusModule,
  KafkaStatusService,
} from 'nest-kafka-groups';
import { KafkaHealthIndicator, KafkaHealthModule } from 'nest-kafka-groups/health';
import { KafkaMetricsModule, KafkaMetricsService } from 'nest-kafka-groups/metrics';
import { KafkaTestClient, testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { KafkaUiModule, KafkaUiService, type KafkaUiSnapshot } from 'nest-kafka-groups/ui';
import { filter, firstValueFrom, map, timeout } from 'rxjs';
import { INTEROP_CONSUMER_SOURCE, KAFKA_LIB } from './support/java/java-consumer.js';
import { InteropGroupFixture } from './support/interop-group.js';
import {
  compileInteropConsumer,
  JavaConsumer,
  type JavaConsumerOptions,
  removeCompiledConsumer,
} from './support/java/java-consumer.js';
import { javaAvailable } from './support/local-machine.js';
import { waitForCompaction } from './support/log-cleaner.js';
import { startTestApp } from './support/nest-test-app.js';

const PRODUCER_SOURCE = join(INTEROP_CONSUMER_SOURCE, '..', 'OutsideProducer.java');
const DESCRIBE_SOURCE = join(INTEROP_CONSUMER_SOURCE, '..', 'DescribeConsumerGroup.java');

/** One member as Kafka's own admin client describes it. */
interface JavaDescribedMember {
  memberId: string;
  clientId: string;
  host: string;
  /** true: joined with group.protocol=consumer; false: a classic member of a consumer group; null: not said. */
  upgraded: boolean | null;
  assignment: Record<string, number[]>;
}

/** The group as Java's AdminClient.describeConsumerGroups sees it (test/support/java/DescribeConsumerGroup.java). */
async function describeWithJava(groupId: string): Promise<{
  state: string;
  type: string;
  assignor: string;
  members: JavaDescribedMember[];
}> {
  const stdout = await new Promise<string>((resolveRun, reject) => {
    execFile(
      'java',
      ['-Xmx128m', '-cp', join(KAFKA_LIB, '*'), DESCRIBE_SOURCE, testBrokers().join(','), groupId],
      { timeout: 60_000 },
      (error, out, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolveRun(out)),
    );
  });
  const lines = stdout.trim().split('\n');
  const [, state, type, assignor] = lines[0].split(' ');
  const members = lines.slice(1).map((line) => {
    const [, memberId, clientId, host, upgraded, assigned] = line.split(' ');
    const assignment: Record<string, number[]> = {};
    if (assigned !== '-') {
      for (const entry of assigned.split(';')) {
        const at = entry.lastIndexOf(':');
        assignment[entry.slice(0, at)] = entry
          .slice(at + 1)
          .split(',')
          .map(Number);
      }
    }
    return { memberId, clientId, host, upgraded: upgraded === '-' ? null : upgraded === 'true', assignment };
  });
  return { state, type, assignor, members };
}

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

/** Compiles OutsideProducer.java once (a single-file source launch compiles it again at every start). */
async function compileProducer(): Promise<string> {
  const classDir = await mkdtemp(join(tmpdir(), 'outside-producer-'));
  await new Promise<void>((resolve, reject) =>
    execFile(
      'javac',
      ['-nowarn', '-cp', join(KAFKA_LIB, '*'), '-d', classDir, PRODUCER_SOURCE],
      { timeout: 120_000 },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`javac failed: ${error.message}\n${stderr}`)) : resolve(),
    ),
  );
  return classDir;
}

/** The Java producer of a scenario, its stdout lines collected; `send` writes a line to its stdin. */
class JavaProducer {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';

  constructor(classDir: string, topic: string, scenario: string) {
    this.child = spawn('java', [
      '-Xmx256m',
      '-cp',
      [classDir, join(KAFKA_LIB, '*')].join(delimiter),
      'OutsideProducer',
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

  async waitForLine(line: string, timeoutMs = 120_000): Promise<void> {
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
  let producerClasses: string | undefined;
  beforeAll(async () => {
    producerClasses = await compileProducer();
  }, 150_000);

  afterEach(async () => {
    gate.release?.();
    Object.assign(gate, { seq: null, release: undefined });
    for (const producer of producers.splice(0)) producer.kill();
    while (apps.length > 0) await apps.pop()!.close();
    seen.length = 0;
  });
  afterAll(async () => {
    await kafka.closeAll();
    if (producerClasses) await rm(producerClasses, { recursive: true, force: true });
  });
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
    const java = new JavaProducer(producerClasses!, topic, 'open-transaction');
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
  }, 240_000);

  test('from Java: a header key twice and binary header values, a null key, on a LogAppendTime topic; a tombstone on a validated DTO is dead-lettered', async () => {
    const topic = uniqueName('java-headers');
    const { groupId } = await start(topic, 1, [{ name: 'message.timestamp.type', value: 'LogAppendTime' }]);
    const java = new JavaProducer(producerClasses!, topic, 'headers');
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
  }, 180_000);

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
      await waitForCompaction(kafka, topic, 3);
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

/** Java member ids start with the client id; "zz-" sorts them after the Nest members ("e2e-app-..."). */
const JAVA_CLIENT_ID = 'zz-outside-java';

(javaAvailable() ? describe : describe.skip)(
  'outside-in probe 2: a Java member of the group with its own defaults',
  () => {
    const fixture = new InteropGroupFixture();
    const { kafka } = fixture;
    let classDir: string | undefined;
    beforeAll(async () => {
      classDir = await compileInteropConsumer();
    }, 90_000);
    afterEach(() => fixture.cleanUp());
    afterAll(async () => {
      await fixture.close();
      await removeCompiledConsumer(classDir);
    });

    const startJava = (groupId: string, topic: string, more: Partial<JavaConsumerOptions>) =>
      fixture.track(
        new JavaConsumer({
          brokers: testBrokers(),
          groupId,
          topic,
          clientId: JAVA_CLIENT_ID,
          maxRuntimeMs: 110_000,
          classDir,
          ...more,
        }),
        JAVA_CLIENT_ID,
      );

    const apps: INestApplication[] = [];
    afterEach(async () => {
      while (apps.length > 0) await apps.pop()!.close();
      seen.length = 0;
    });

    /** The Nest member alone in the group first, holding both partitions. */
    async function startNest(groupId: string, topic: string, extraImports: Type[] = []) {
      await kafka.createTopic(topic, 2);
      const { app, server } = await startTestApp([feature(groupId, topic)], {}, extraImports);
      apps.push(app);
      await kafka.waitForStableGroup(groupId, 1);
      const member = server.groups[0].members[0];
      await waitFor(
        'the Nest member holding both partitions',
        30_000,
        () => member.assignment[topic]?.length === 2,
      );
      return { app, member };
    }

    /** 300 records: handled once across the Nest member and Java, each on the partition it holds; the end committed. */
    async function sharedOnce(groupId: string, topic: string, java: JavaConsumer, nestPartition: number) {
      await kafka.produceKeyed(topic, 300, (i) => `k${i % 13}`);
      await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
      const javaSeqs = () => java.records.map((r) => (JSON.parse(r.value) as { seq: number }).seq);
      await waitFor('300 records reported', 10_000, () => seen.length + java.records.length >= 300);
      expect([...seen.map((d) => d.seq), ...javaSeqs()].sort(bySeq)).toEqual(
        Array.from({ length: 300 }, (_, i) => i),
      );
      expect(new Set(seen.map((d) => d.partition))).toEqual(new Set([nestPartition]));
      expect(new Set(java.records.map((r) => r.partition))).toEqual(new Set([1 - nestPartition]));
      expect(java.errors).toEqual([]);
    }

    test("Java's default assignors [range, cooperative-sticky]: the group agrees on range, each side holds a partition, every record once", async () => {
      const topic = uniqueName('java-defaults');
      const groupId = uniqueName('java-defaults');
      const { member } = await startNest(groupId, topic);
      const java = startJava(groupId, topic, { strategies: ['range', 'cooperative-sticky'] });
      const group = await kafka.waitForStableGroup(groupId, 2, 60_000);
      expect(group.protocol).toBe('range');
      // range over members sorted by id: the Nest member ("e2e-app-...") first.
      await java.waitUntil('partition 1', 30_000, () => JSON.stringify(java.assignment) === '[1]');
      await waitFor(
        'the Nest member holding partition 0',
        20_000,
        () => JSON.stringify(member.assignment[topic]) === '[0]',
      );
      await sharedOnce(groupId, topic, java, 0);
    }, 180_000);

    test("a Java member with group.protocol=consumer (KIP-848) joins: the broker converts the group and assigns both; status, health, metrics and the UI show what Java's describeConsumerGroups says; a seek is refused while it is in the group, naming its members, and goes through once the group is Empty", async () => {
      const topic = uniqueName('kip848');
      const groupId = uniqueName('kip848');
      @Module({ imports: [KafkaUiModule.forRoot({ sampleIntervalMs: 500 })] })
      class UiFeature {}
      const { app, member } = await startNest(groupId, topic, [
        KafkaStatusModule,
        KafkaHealthModule,
        KafkaMetricsModule,
        UiFeature,
      ]);
      const java = startJava(groupId, topic, { groupProtocol: 'consumer' });
      // The broker's own assignor (uniform) deals the partitions; the library's assigner is not asked.
      await java.waitUntil('one partition', 90_000, () => java.assignment?.length === 1);
      const javaPartition = java.assignment![0];
      await waitFor(
        'the Nest member holding the other partition',
        30_000,
        () => JSON.stringify(member.assignment[topic]) === JSON.stringify([1 - javaPartition]),
      );
      await sharedOnce(groupId, topic, java, 1 - javaPartition);
      const seenBefore = seen.length;

      // Kafka's own view: DescribeGroups (as kafkajs speaks it) calls this group Dead with no members, Java's admin
      // asks ConsumerGroupDescribe. The library's status, health, metrics and UI must say what Java says.
      const java848 = await describeWithJava(groupId);
      expect(java848).toMatchObject({ state: 'Stable', type: 'Consumer' });
      const byId = (a: { memberId: string }, b: { memberId: string }) => (a.memberId < b.memberId ? -1 : 1);
      expect(java848.members.map((m) => [m.memberId, m.clientId, m.upgraded, m.assignment]).sort()).toEqual(
        [
          [java.memberId, JAVA_CLIENT_ID, true, { [topic]: [javaPartition] }],
          [member.memberId, 'e2e-app', false, { [topic]: [1 - javaPartition] }],
        ].sort(),
      );
      const status = await app.get(KafkaStatusService).group(groupId);
      expect(status).toMatchObject({
        state: java848.state,
        groupProtocol: 'consumer',
        groupMembers: java848.members.length,
        lag: 0,
      });
      expect(status!.error).toBeUndefined();
      expect(status!.partitions!.map((p) => [p.partition, p.memberId, p.lag])).toEqual(
        [0, 1].map((p) => [p, p === javaPartition ? java.memberId : member.memberId, 0]),
      );
      const described = (await app.get(KafkaStatusService).offsets(groupId, [topic])).members;
      expect([...described].sort(byId)).toEqual(
        [...java848.members].sort(byId).map((m) => ({
          memberId: m.memberId,
          clientId: m.clientId,
          clientHost: m.host,
          assignment: m.assignment,
          protocol: m.upgraded ? 'consumer' : 'classic',
        })),
      );
      const health = app.get(KafkaHealthIndicator).groupsCheck('kafka-groups');
      expect(health).toEqual({
        'kafka-groups': { status: 'up', groups: { [groupId]: { members: 1, joined: 1 } } },
      });
      const metrics = await app.get(KafkaMetricsService).metrics();
      const sample = (line: string) =>
        metrics
          .split('\n')
          .find((l) => l.startsWith(`${line} `))
          ?.split(' ')[1];
      expect(sample(`kafka_consumer_group_coordinator_members{group="${groupId}",protocol="consumer"}`)).toBe(
        '1',
      );
      expect(sample(`kafka_consumer_group_coordinator_members{group="${groupId}",protocol="classic"}`)).toBe(
        '1',
      );
      expect(sample(`kafka_consumer_group_members{group="${groupId}",state="joined"}`)).toBe('1');
      for (const partition of [0, 1]) {
        expect(
          sample(`kafka_consumer_group_lag{group="${groupId}",topic="${topic}",partition="${partition}"}`),
        ).toBe('0');
      }
      const ui = await firstValueFrom(
        app
          .get(KafkaUiService)
          .events(groupId)
          .pipe(
            map((event) => (event.data as KafkaUiSnapshot).groups[0]),
            filter((view) => view !== undefined && view.groupProtocol !== null),
            timeout(20_000),
          ),
      );
      expect(ui).toMatchObject({ state: 'Stable', groupProtocol: 'consumer', error: null, lag: 0 });
      expect(ui.members.map((m) => [m.memberId, m.local, m.protocol, m.state, m.assignment]).sort()).toEqual(
        [
          [java.memberId, false, 'consumer', null, { [topic]: [javaPartition] }],
          [member.memberId, true, 'classic', 'joined', { [topic]: [1 - javaPartition] }],
        ].sort(),
      );

      // A seek must not take the group for Empty: it names the members still in it.
      const groups = app.get(KafkaGroups);
      const committed = await kafka.offsets(groupId, topic);
      const refused = groups.seek(groupId, { topic, offset: 'earliest' }, { emptyTimeoutMs: 2_000 });
      await expect(refused).rejects.toMatchObject({ name: 'KafkaConsumerProtocolGroupError', groupId });
      await expect(refused).rejects.toThrow(`Cannot seek consumer group "${groupId}"`);
      await expect(refused).rejects.toThrow(
        `1 member(s) still in it: ${java.memberId} (client "${JAVA_CLIENT_ID}"`,
      );
      expect(await kafka.offsets(groupId, topic)).toEqual(committed);
      await waitFor('the Nest member back at work', 30_000, () => member.state === 'joined');

      // Once the Java member left, the group is a classic one again and the seek goes through.
      await java.stop(15_000);
      expect(java.exitReason).toBe('signal');
      const result = await groups.seek(groupId, { topic, offset: 'earliest' }, { emptyTimeoutMs: 20_000 });
      expect(result.partitions).toEqual([
        { partition: 0, offset: '0' },
        { partition: 1, offset: '0' },
      ]);
      await waitFor(
        'every record handled again by the Nest member',
        60_000,
        () => seen.length >= seenBefore + 300,
      );
      await kafka.waitForCommittedToEnd(groupId, topic, 30_000);

      // An Empty group of the consumer protocol (a KIP-848 member was its last): the seek goes through, kafkajs's
      // commit turning it classic, and moves every partition.
      await groups.stop(groupId);
      const last = startJava(groupId, topic, { groupProtocol: 'consumer' });
      await last.waitUntil('both partitions', 90_000, () => last.assignment?.length === 2);
      await last.stop(15_000);
      const empty = await app.get(KafkaStatusService).group(groupId);
      expect(empty).toMatchObject({ state: 'Empty', groupProtocol: 'consumer', groupMembers: 0 });
      const reset = await groups.seek(groupId, { topic, offset: 'earliest' }, { emptyTimeoutMs: 2_000 });
      expect(reset.partitions).toEqual([
        { partition: 0, offset: '0' },
        { partition: 1, offset: '0' },
      ]);
      expect((await kafka.offsets(groupId, topic)).map((p) => p.committed)).toEqual([0, 0]);
      expect(await app.get(KafkaStatusService).group(groupId)).toMatchObject({
        state: 'Empty',
        groupProtocol: 'classic',
      });
    }, 240_000);
  },
);
