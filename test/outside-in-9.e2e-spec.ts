/**
 * Outside-in probe 9, "any producer, any log": records as real producers and brokers leave them, against groups of
 * this library on the e2e step's broker. Java transactional producers interleaving committed and aborted
 * transactions on several partitions, read by a batch handler and by a handler with retry topics; a transaction
 * left open and then aborted by its producer's replacement, the lag the library and kafka-consumer-groups give
 * meanwhile, and seeks into the aborted records and onto a control marker; records deleted under a paused
 * partition. See docs/RELIABILITY.md, findings 25 on.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { ConsoleLogger, Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import kafkajs from 'kafkajs';
import {
  DLT_HEADERS,
  KafkaBatchContext,
  KafkaBatchFailedError,
  type KafkaFeatureOptions,
  type KafkaGroupContext,
  KafkaGroups,
  KafkaHandler,
  KafkaModule,
  KafkaStatusModule,
  KafkaStatusService,
  RETRY_TOPIC_HEADERS,
} from 'nest-kafka-groups';
import { KafkaMetricsModule, KafkaMetricsService } from 'nest-kafka-groups/metrics';
import { KafkaTestClient, testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { INTEROP_CONSUMER_SOURCE, KAFKA_LIB, kafkaTool } from './support/java/java-consumer.js';
import { javaAvailable } from './support/local-machine.js';
import { waitForCompaction } from './support/log-cleaner.js';
import { startTestApp } from './support/nest-test-app.js';

jest.setTimeout(90_000);

const WRITER_SOURCE = join(INTEROP_CONSUMER_SOURCE, '..', 'LogWriter.java');

/** test/support/java/LogWriter.java: one JVM for the spec, a command per stdin line, answered on stdout. */
class LogWriter {
  private readonly lines: string[] = [];
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';

  constructor() {
    this.child = spawn('java', [
      '-Xmx256m',
      '-XX:TieredStopAtLevel=1',
      '-cp',
      join(KAFKA_LIB, '*'),
      WRITER_SOURCE,
      testBrokers().join(','),
    ]);
    createInterface({ input: this.child.stdout }).on('line', (line) => this.lines.push(line));
    this.child.stderr.on(
      'data',
      (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)),
    );
  }

  private async answer(prefix: string): Promise<string> {
    return waitFor(`the Java writer answering ${prefix}`, 60_000, () => {
      const line = this.lines.find((l) => l.startsWith(prefix));
      if (line !== undefined) return line;
      if (this.child.exitCode !== null)
        throw new Error(`the Java writer exited ${this.child.exitCode}\n${this.stderr}`);
      return undefined;
    });
  }

  ready(): Promise<string> {
    return this.answer('READY');
  }

  async run(command: string): Promise<void> {
    this.child.stdin.write(`${command}\n`);
    const line = await Promise.race([this.answer(`OK ${command}`), this.answer(`ERR ${command}`)]);
    if (line.startsWith('ERR')) throw new Error(`${line}\n${this.stderr}`);
  }

  async quit(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('close', resolve));
    this.child.stdin.end('quit\n');
    await exited;
  }
}

/** One row of `kafka-consumer-groups --describe`, several groups in one run of the tool. */
interface ToolRow {
  group: string;
  topic: string;
  partition: number;
  current: number | null;
  logEnd: number;
  lag: number | null;
}

async function toolDescribe(...groupIds: string[]): Promise<ToolRow[]> {
  const run = await kafkaTool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', testBrokers(), [
    '--describe',
    ...groupIds.flatMap((g) => ['--group', g]),
  ]);
  if (run.code !== 0) throw new Error(`kafka-consumer-groups failed (${run.code}):\n${run.stderr}`);
  const number = (cell: string) => (cell === '-' ? null : Number(cell));
  const rows: ToolRow[] = [];
  let columns: string[] = [];
  for (const line of run.stdout.split('\n')) {
    const cells = line.trim().split(/\s+/);
    if (cells[0] === 'GROUP') columns = cells;
    else if (columns.length > 0 && cells.length >= columns.length) {
      const row = Object.fromEntries(cells.map((cell, i) => [columns[i], cell]));
      rows.push({
        group: row.GROUP,
        topic: row.TOPIC,
        partition: Number(row.PARTITION),
        current: number(row['CURRENT-OFFSET']),
        logEnd: Number(row['LOG-END-OFFSET']),
        lag: number(row.LAG),
      });
    }
  }
  return rows.sort(
    (a, b) => `${a.group} ${a.topic}`.localeCompare(`${b.group} ${b.topic}`) || a.partition - b.partition,
  );
}

/** The library's `kafka_consumer_group_lag` per partition of `topic`. */
async function metricLag(app: INestApplication, groupId: string, topic: string, partitions: number) {
  const text = await app.get(KafkaMetricsService).metrics();
  const sample = (partition: number) => {
    const prefix = `kafka_consumer_group_lag{group="${groupId}",topic="${topic}",partition="${partition}"} `;
    const line = text.split('\n').find((l) => l.startsWith(prefix));
    return line === undefined ? undefined : Number(line.slice(prefix.length));
  };
  return Array.from({ length: partitions }, (_, p) => sample(p));
}

async function statusLag(app: INestApplication, groupId: string, topic: string) {
  const status = await app.get(KafkaStatusService).offsets(groupId, [topic]);
  return status.partitions.map(({ committedOffset, logEndOffset, lag }) => ({
    committedOffset,
    logEndOffset,
    lag,
  }));
}

interface Handled {
  group: string;
  topic: string;
  partition: number;
  offset: string;
  key: string | undefined;
  seq: number;
  attempt: number;
  /** The payload was null (a tombstone). */
  tombstone: boolean;
}

const handled: Handled[] = [];
/** The number of items of each batch handler call. */
const batchCallSizes: number[] = [];
/** Seqs whose delivery fails: in the batch handler, in the single one (every attempt, or only the first). */
const failing = { batch: new Set<number>(), always: new Set<number>(), once: new Set<number>() };

@Controller()
class SingleController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: { seq: number } | null, @Ctx() ctx: KafkaGroupContext): void {
    const seq = payload?.seq ?? -1;
    if (failing.always.has(seq) || (failing.once.has(seq) && ctx.attempt === 1))
      throw new Error(`seq ${seq} refused`);
    handled.push({
      group: ctx.groupId,
      topic: ctx.topic,
      partition: ctx.partition,
      offset: ctx.offset,
      key: ctx.key,
      seq,
      attempt: ctx.attempt,
      tombstone: payload === null,
    });
  }
}

@Controller()
class BatchController {
  @KafkaHandler('${TOPIC}', { batch: true })
  handle(@Payload() items: ({ seq: number } | null)[], @Ctx() ctx: KafkaBatchContext): void {
    batchCallSizes.push(items.length);
    const refused = items.findIndex((item) => item !== null && failing.batch.has(item.seq));
    items.slice(0, refused < 0 ? items.length : refused).forEach((item, i) =>
      handled.push({
        group: ctx.groupId,
        topic: ctx.topic,
        partition: ctx.partition,
        offset: ctx.records[i].offset,
        key: ctx.records[i].key,
        seq: item?.seq ?? -1,
        attempt: ctx.attempt,
        tombstone: item === null,
      }),
    );
    if (refused >= 0)
      throw new KafkaBatchFailedError(refused, new Error(`seq ${items[refused]!.seq} refused`));
  }
}

function feature(
  controller: Function,
  groupId: string,
  topic: string,
  options: Partial<KafkaFeatureOptions> = {},
) {
  @Module({
    imports: [KafkaModule.forFeature({ ...options, groupId, topicVariables: { TOPIC: topic } })],
    controllers: [controller as never],
  })
  class ProbeFeature {}
  return ProbeFeature;
}

const seqsOf = (group: string, topic?: string) =>
  handled
    .filter((h) => h.group === group && (topic === undefined || h.topic === topic))
    .map((h) => h.seq)
    .sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

(javaAvailable() ? describe : describe.skip)('outside-in probe 9: any producer, any log', () => {
  const kafka = new KafkaTestClient({ clientId: 'outside-in-9' });
  const apps: INestApplication[] = [];
  let writer: LogWriter;
  let warnings: jest.SpiedFunction<ConsoleLogger['warn']>;

  beforeAll(async () => {
    writer = new LogWriter();
    await writer.ready();
  });
  beforeEach(() => {
    warnings = jest.spyOn(ConsoleLogger.prototype, 'warn');
  });
  afterEach(async () => {
    warnings.mockRestore();
    await Promise.all(apps.splice(0).map((app) => app.close()));
    handled.length = 0;
    batchCallSizes.length = 0;
    for (const seqs of Object.values(failing)) seqs.clear();
  });
  afterAll(async () => {
    await writer?.quit();
    await kafka.closeAll();
  });

  async function start(features: Function[]) {
    const { app } = await startTestApp(features as never, {}, [KafkaStatusModule, KafkaMetricsModule]);
    apps.push(app);
    return app;
  }

  const warned = (text: string) =>
    warnings.mock.calls.map(([line]) => String(line)).filter((line) => line.includes(text));

  test('two Java transactional producers interleaving commits and aborts on three partitions, read by a batch handler and by a handler with retry topics: only committed records handled, retried and dead-lettered; both groups commit past the abort markers, lag 0 in the status, the metric and kafka-consumer-groups', async () => {
    const topic = uniqueName('o9-tx');
    const batchGroup = uniqueName('o9-batch');
    const retryGroup = uniqueName('o9-retry');
    await kafka.createTopic(topic, 3);
    failing.batch.add(4);
    failing.always.add(5);
    failing.once.add(7);
    const app = await start([
      feature(BatchController, batchGroup, topic, { deadLetter: { topic: `${topic}-batch-dlt` } }),
      feature(SingleController, retryGroup, topic, { retry: { topics: true, delaysMs: [200] } }),
    ]);
    await Promise.all([kafka.waitForStableGroup(batchGroup, 1), kafka.waitForStableGroup(retryGroup, 1)]);

    await writer.run(`interleave ${topic}`);

    // Per partition: A's 3 records and B's 3 in turn, A's commit and B's abort markers, 2 of A's, its commit, 1 of
    // B's and its abort marker.
    const [batchEnds, retryEnds] = await Promise.all([
      kafka.waitForCommittedToEnd(batchGroup, topic),
      kafka.waitForCommittedToEnd(retryGroup, topic),
    ]);
    expect(batchEnds.map((o) => o.end)).toEqual([13, 13, 13]);
    expect(retryEnds.map((o) => o.end)).toEqual([13, 13, 13]);
    await kafka.waitForCommittedToEnd(retryGroup, `${topic}-retry`);

    // The batch handler: every committed record but 4, which failed its three attempts and is dead-lettered alone;
    // no call for the batches of aborted records and control records only.
    expect(seqsOf(batchGroup)).toEqual(range(0, 15).filter((s) => s !== 4));
    expect(batchCallSizes.filter((size) => size === 0)).toEqual([]);
    const [batchDead] = await kafka.readMessages(`${topic}-batch-dlt`, 1);
    expect(batchDead.value?.toString()).toBe('{"seq":4}');
    expect(batchDead.headers?.[DLT_HEADERS.exceptionMessage]?.toString()).toBe('seq 4 refused');
    // The retry topics: 5 and 7 passed on (nothing of the aborted transactions), 7 handled there, 5 dead-lettered.
    expect(seqsOf(retryGroup, topic)).toEqual(range(0, 15).filter((s) => s !== 5 && s !== 7));
    expect(handled.filter((h) => h.topic === `${topic}-retry`).map((h) => [h.seq, h.attempt])).toEqual([
      [7, 2],
    ]);
    const retried = await kafka.readMessages(`${topic}-retry`, 2);
    expect(retried.map((m) => m.value?.toString()).sort()).toEqual(['{"seq":5}', '{"seq":7}']);
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.value?.toString()).toBe('{"seq":5}');
    // The batch handler's ctx.records line up with its items: each seq at the offset the other group saw it at.
    const where = (group: string) =>
      new Map(
        handled
          .filter((h) => h.group === group && h.topic === topic)
          .map((h) => [h.seq, `${h.partition}@${h.offset}`]),
      );
    const single = where(retryGroup);
    for (const [seq, at] of where(batchGroup))
      if (single.has(seq)) expect([seq, at]).toEqual([seq, single.get(seq)]);
    expect(where(batchGroup).size).toBe(14);
    // In offset order per partition, each group.
    for (const group of [batchGroup, retryGroup]) {
      for (const partition of [0, 1, 2]) {
        const offsets = handled
          .filter((h) => h.group === group && h.topic === topic && h.partition === partition)
          .map((h) => Number(h.offset));
        expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      }
    }

    // Drained, the lag is 0 everywhere, not 1 for the marker at each partition's end.
    for (const group of [batchGroup, retryGroup]) {
      expect(await statusLag(app, group, topic)).toEqual(
        [0, 1, 2].map(() => ({ committedOffset: 13, logEndOffset: 13, lag: 0 })),
      );
    }
    await waitFor('the metric lag at 0', 10_000, async () => {
      const lags = [
        ...(await metricLag(app, batchGroup, topic, 3)),
        ...(await metricLag(app, retryGroup, topic, 3)),
      ];
      return lags.every((lag) => lag === 0);
    });
    const tool = await toolDescribe(batchGroup, retryGroup);
    expect(
      tool.filter((row) => row.topic === topic).map(({ current, logEnd, lag }) => [current, logEnd, lag]),
    ).toEqual(Array.from({ length: 6 }, () => [13, 13, 0]));
    expect(
      tool.find((row) => row.topic === `${topic}-retry` && row.lag !== 0 && row.lag !== null),
    ).toBeUndefined();
  });
  test("a Java transaction left open, then aborted by its producer's replacement: the member waits at the last stable offset, no error; the library's lag is 0 meanwhile, kafka-consumer-groups' counts the waiting records; then it goes on past the abort marker, and seeks onto the aborted records and onto the marker handle only the committed record after them", async () => {
    const topic = uniqueName('o9-open');
    const groupId = uniqueName('o9-open');
    await kafka.createTopic(topic, 1);
    const app = await start([feature(SingleController, groupId, topic)]);
    await kafka.waitForStableGroup(groupId, 1);
    const plain = (seq: number) =>
      kafka.produce(topic, [{ key: `k${seq}`, value: JSON.stringify({ seq }), partition: 0 }]);
    await plain(0);
    await kafka.waitForCommittedToEnd(groupId, topic);

    // Offsets: 0 plain, 1-2 the open transaction, 3 plain (behind it: not readable until it ends).
    await writer.run(`open ${topic} 0 1 2`);
    await plain(3);
    const tool = await toolDescribe(groupId);
    expect(tool.map(({ current, logEnd, lag }) => [current, logEnd, lag])).toEqual([[1, 4, 3]]);
    expect(seqsOf(groupId)).toEqual([0]);
    expect(await statusLag(app, groupId, topic)).toEqual([{ committedOffset: 1, logEndOffset: 1, lag: 0 }]);
    expect(await metricLag(app, groupId, topic, 1)).toEqual([0]);
    // A seek to the plain record behind the transaction: refused (the group can read nothing there until the
    // transaction ends), the message saying why the log it names ends at 1 while the tool says 4.
    const groups = app.get(KafkaGroups);
    await expect(groups.seek(groupId, { topic, partition: 0, offset: 3 })).rejects.toThrow(
      `3 is outside ${topic}[0], which holds offsets 0 to 1 (log end as the group reads it: the last stable offset while a transaction is open there, which holds back what follows it until it ends)`,
    );

    // The replacement's initTransactions aborts the open transaction: its marker at 4.
    await writer.run(`replace ${topic}`);
    const [end] = await kafka.waitForCommittedToEnd(groupId, topic);
    expect(end.end).toBe(5);
    expect(handled.map((h) => [h.seq, h.offset])).toEqual([
      [0, '0'],
      [3, '3'],
    ]);
    expect(await statusLag(app, groupId, topic)).toEqual([{ committedOffset: 5, logEndOffset: 5, lag: 0 }]);
    expect((await toolDescribe(groupId)).map(({ current, logEnd, lag }) => [current, logEnd, lag])).toEqual([
      [5, 5, 0],
    ]);

    // A seek onto the first aborted record, then onto the abort marker.
    handled.length = 0;
    await groups.seek(groupId, { topic, partition: 0, offset: 1 });
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(handled.map((h) => [h.seq, h.offset])).toEqual([[3, '3']]);
    handled.length = 0;
    await groups.seek(groupId, { topic, partition: 0, offset: 4 });
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(handled).toEqual([]);
    await waitFor(
      'the metric lag at 0',
      10_000,
      async () => (await metricLag(app, groupId, topic, 1))[0] === 0,
    );
  });

  test('records deleted under a paused partition (delete-records past the committed offset): at the resume the group goes on from the new log start, one WARN naming the offsets lost', async () => {
    const topic = uniqueName('o9-deleted');
    const groupId = uniqueName('o9-deleted');
    await kafka.createTopic(topic, 1);
    const app = await start([feature(SingleController, groupId, topic)]);
    await kafka.waitForStableGroup(groupId, 1);
    const produce = (seqs: number[]) =>
      kafka.produce(
        topic,
        seqs.map((seq) => ({ key: `k${seq}`, value: JSON.stringify({ seq }), partition: 0 })),
      );
    await produce([0, 1, 2]);
    await kafka.waitForCommittedToEnd(groupId, topic);

    const groups = app.get(KafkaGroups);
    groups.pause(groupId);
    await produce([3, 4, 5, 6, 7]);
    const admin = await kafka.admin();
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '6' }] });
    // The deleted records count as lag in both views until the group moves on.
    expect(await statusLag(app, groupId, topic)).toEqual([{ committedOffset: 3, logEndOffset: 8, lag: 5 }]);
    await waitFor(
      'the metric lag at 5',
      10_000,
      async () => (await metricLag(app, groupId, topic, 1))[0] === 5,
    );
    expect((await toolDescribe(groupId)).map(({ current, logEnd, lag }) => [current, logEnd, lag])).toEqual([
      [3, 8, 5],
    ]);
    expect(seqsOf(groupId)).toEqual([0, 1, 2]);

    groups.resume(groupId);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seqsOf(groupId)).toEqual([0, 1, 2, 6, 7]);
    expect(warned('out of range')).toEqual([
      expect.stringContaining(
        `Group "${groupId}": offset 3 of ${topic}[0] is out of range; going on from the earliest retained offset 6: offsets 3 to 5 (3)`,
      ),
    ]);
    expect(await statusLag(app, groupId, topic)).toEqual([{ committedOffset: 8, logEndOffset: 8, lag: 0 }]);
  });
  test('a compacted topic: the handler gets a tombstone as a null payload with its key; the gaps the cleaner left are passed, a seek into one goes on from the next record kept; lag 0 at the end', async () => {
    const topic = uniqueName('o9-compacted');
    await kafka.createTopic(topic, 1, [
      { name: 'cleanup.policy', value: 'compact' },
      { name: 'segment.ms', value: '100' },
      { name: 'min.cleanable.dirty.ratio', value: '0.01' },
    ]);
    const json = (seq: number, key: string) => ({ key, value: JSON.stringify({ seq }), partition: 0 });
    // 0 a, 1 b, 2 a again, 3 b's tombstone, 4 c; 5, written once the segment aged, rolls it: 0 and 1 go.
    await kafka.produce(topic, [
      json(0, 'a'),
      json(1, 'b'),
      json(2, 'a'),
      { key: 'b', value: null, partition: 0 },
      json(4, 'c'),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await kafka.produce(topic, [json(5, 'd')]);
    await waitForCompaction(kafka, topic, 2);

    const groupId = uniqueName('o9-compacted');
    const batchGroup = uniqueName('o9-compacted-batch');
    const app = await start([
      feature(SingleController, groupId, topic),
      feature(BatchController, batchGroup, topic),
    ]);
    await Promise.all([kafka.waitForStableGroup(groupId, 1), kafka.waitForStableGroup(batchGroup, 1)]);
    await Promise.all([
      kafka.waitForCommittedToEnd(groupId, topic),
      kafka.waitForCommittedToEnd(batchGroup, topic),
    ]);
    const seen = (group = groupId) =>
      handled
        .filter((h) => h.group === group)
        .map(({ offset, key, seq, tombstone }) => ({ offset, key, seq, tombstone }));
    const kept = [
      { offset: '2', key: 'a', seq: 2, tombstone: false },
      { offset: '3', key: 'b', seq: -1, tombstone: true },
      { offset: '4', key: 'c', seq: 4, tombstone: false },
      { offset: '5', key: 'd', seq: 5, tombstone: false },
    ];
    expect(seen()).toEqual(kept);
    // A batch handler's array holds the tombstone as null, its record (ctx.records) the key.
    expect(seen(batchGroup)).toEqual(kept);

    handled.length = 0;
    await app.get(KafkaGroups).seek(groupId, { topic, partition: 0, offset: 1 });
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seen()).toEqual(kept);
    expect(await statusLag(app, groupId, topic)).toEqual([{ committedOffset: 6, logEndOffset: 6, lag: 0 }]);
    expect((await toolDescribe(groupId)).map(({ current, logEnd, lag }) => [current, logEnd, lag])).toEqual([
      [6, 6, 0],
    ]);
  });
  test("a group's topics.config with cleanup.policy compact (the README's example): the retry and dead-letter topics the library creates beside its compacted topic are not compacted, so a key's earlier retries and dead letters stay", async () => {
    const topic = uniqueName('o9-compact-dlt');
    const groupId = uniqueName('o9-compact-dlt');
    failing.always.add(0).add(1);
    await start([
      feature(SingleController, groupId, topic, {
        topics: { config: { 'cleanup.policy': 'compact' } },
        retry: { topics: true, delaysMs: [100] },
      }),
    ]);
    await kafka.waitForStableGroup(groupId, 1);
    const json = (seq: number, key: string) => ({ key, value: JSON.stringify({ seq }), partition: 0 });
    // A tombstone failing once goes through the retry topic as a tombstone.
    failing.once.add(-1);
    await kafka.produce(topic, [
      json(0, 'a'),
      json(1, 'a'),
      json(2, 'b'),
      { key: 'c', value: null, partition: 0 },
    ]);
    await kafka.waitForCommittedToEnd(groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, `${topic}-retry`);
    expect(
      handled.map(({ topic: t, key, seq, attempt, tombstone }) => [t, key, seq, attempt, tombstone]),
    ).toEqual([
      [topic, 'b', 2, 1, false],
      [`${topic}-retry`, 'c', -1, 2, true],
    ]);

    const admin = await kafka.admin();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [topic, `${topic}-retry`, `${topic}-dlt`].map((name) => ({
        type: kafkajs.ConfigResourceTypes.TOPIC,
        name,
        configNames: ['cleanup.policy'],
      })),
    });
    expect(
      Object.fromEntries(resources.map((r) => [r.resourceName, r.configEntries[0]?.configValue])),
    ).toEqual({ [topic]: 'compact', [`${topic}-retry`]: 'delete', [`${topic}-dlt`]: 'delete' });
    const dead = await kafka.readMessages(`${topic}-dlt`, 2);
    expect(dead.map((m) => [m.key?.toString(), m.value?.toString()])).toEqual([
      ['a', '{"seq":0}'],
      ['a', '{"seq":1}'],
    ]);
  });
  test("a LogAppendTime topic: a record failing through the retry topic to the dead-letter topic keeps the broker's append time and type in Spring's original-timestamp headers, not the producer's", async () => {
    const topic = uniqueName('o9-append-time');
    const groupId = uniqueName('o9-append-time');
    await kafka.createTopic(topic, 1, [{ name: 'message.timestamp.type', value: 'LogAppendTime' }]);
    failing.always.add(0);
    await start([feature(SingleController, groupId, topic, { retry: { topics: true, delaysMs: [100] } })]);
    await kafka.waitForStableGroup(groupId, 1);
    const before = Date.now();
    // A create time of 2001: the broker stamps the record with its own clock.
    await kafka.produce(topic, [
      { key: 'k0', value: JSON.stringify({ seq: 0 }), partition: 0, timestamp: '1000000000000' },
    ]);
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    const after = Date.now();
    const last = (value: Buffer | string | (Buffer | string)[] | undefined) =>
      Buffer.from((Array.isArray(value) ? value[value.length - 1] : value) as Buffer);
    const headers = dead.headers!;
    expect(last(headers[DLT_HEADERS.originalTopic]).toString()).toBe(topic);
    expect(last(headers[DLT_HEADERS.originalTimestampType]).toString()).toBe('LogAppendTime');
    const original = Number(last(headers[DLT_HEADERS.originalTimestamp]).readBigInt64BE());
    expect(original).toBeGreaterThanOrEqual(before - 5_000);
    expect(original).toBeLessThanOrEqual(after);
    // Spring's retry header: Java's BigInteger bytes of the same time.
    const retryOriginal = last(headers[RETRY_TOPIC_HEADERS.originalTimestamp]);
    expect(Number(BigInt(`0x${retryOriginal.toString('hex')}`))).toBe(original);
  });
  test("a group's topics.config with retention.ms shorter than a retry delay: each retry topic the library creates keeps its records that long after they are due (retention.ms plus its longest delay), so retention cannot delete a retry before it is due", async () => {
    const topic = uniqueName('o9-retention');
    const groupId = uniqueName('o9-retention');
    await start([
      feature(SingleController, groupId, topic, {
        topics: { config: { 'retention.ms': '60000' } },
        retry: { topics: true, delaysMs: [1000, 120000] },
      }),
    ]);
    await kafka.waitForStableGroup(groupId, 1);
    const admin = await kafka.admin();
    const names = [topic, `${topic}-retry-1000`, `${topic}-retry-120000`, `${topic}-dlt`];
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: names.map((name) => ({
        type: kafkajs.ConfigResourceTypes.TOPIC,
        name,
        configNames: ['retention.ms'],
      })),
    });
    expect(
      Object.fromEntries(resources.map((r) => [r.resourceName, r.configEntries[0]?.configValue])),
    ).toEqual({
      [topic]: '60000',
      [`${topic}-retry-1000`]: '61000',
      [`${topic}-retry-120000`]: '180000',
      [`${topic}-dlt`]: '60000',
    });
  });
});
