/**
 * Outside-in probe 3 (docs/RELIABILITY.md): Kafka's own admin tool (ConsumerGroupCommand, from the broker's jars)
 * on a running and a stopped group of this library, and Spring Kafka's own code (spring-kafka, no Spring Boot)
 * reading the library's dead letters, writing dead letters the library reads, and running its non-blocking retry
 * chain beside the library's.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Controller, type INestApplication, Logger, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import {
  DLT_HEADERS,
  type KafkaGroupContext,
  KafkaGroups,
  KafkaHandler,
  KafkaModule,
} from 'nest-kafka-groups';
import { KafkaTestClient, testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import {
  compileInteropConsumer,
  JavaConsumer,
  kafkaTool,
  removeCompiledConsumer,
  type ToolRun,
} from './support/java/java-consumer.js';
import {
  compileSpringPrograms,
  resolveSpringJars,
  runSpringDeadLetters,
  runSpringRetryChain,
  type SpringDeadLetter,
  springRecords,
} from './support/java/spring/spring-kafka.js';
import { javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

jest.setTimeout(240_000);

const describeJava = javaAvailable() ? describe : describe.skip;

/**
 * The Spring jars fetched and the Spring programs compiled while the admin-tool tests run (they mostly wait on the
 * broker and the tool's JVM); the Spring tests await it. A failure is theirs, not an unhandled rejection.
 */
const springPrograms: Promise<string> | undefined = javaAvailable()
  ? resolveSpringJars().then(compileSpringPrograms)
  : undefined;
springPrograms?.catch(() => undefined);
// At file level, so that the classes go even when a filter ran none of the Spring tests.
afterAll(async () => {
  const classDir = await springPrograms?.catch(() => undefined);
  if (classDir) await rm(classDir, { recursive: true, force: true });
});

interface Handled {
  topic: string;
  partition: number;
  offset: number;
  headers: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
}

const handled: Handled[] = [];
/** Thrown by the dead-letter probe's handler, with a cause, as a failing downstream call would. */
class ProbeRefusalError extends Error {
  constructor(message: string, cause: Error) {
    super(message, { cause });
    this.name = 'ProbeRefusalError';
  }
}

@Controller()
class ToolsController {
  @KafkaHandler('${TOOLS_TOPIC}')
  handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext): void {
    handled.push({ topic: ctx.topic, partition: ctx.partition, offset: Number(ctx.offset), headers: {} });
  }
}

@Controller()
class RefusingController {
  @KafkaHandler('${REFUSED_TOPIC}')
  handle(@Payload() payload: { seq: number }): void {
    throw new ProbeRefusalError(`refused seq ${payload.seq}`, new TypeError('downstream said no'));
  }
}

/** Reads Spring's dead letters, and refuses them again so that the library dead-letters them in turn. */
@Controller()
class SpringDltController {
  @KafkaHandler('${SPRING_DLT}')
  handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext): void {
    handled.push({
      topic: ctx.topic,
      partition: ctx.partition,
      offset: Number(ctx.offset),
      headers: { ...ctx.message.headers },
    });
    throw new ProbeRefusalError('refused again', new TypeError('still no'));
  }
}

/** Deliveries on the retry-chain probe's topics: [topic, ctx.attempt]; the handler fails while `failing`. */
const retried: { deliveries: [string, number][]; failing: boolean } = { deliveries: [], failing: false };

@Controller()
class RetryingController {
  @KafkaHandler('${RETRY_TOPIC}')
  handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext): void {
    retried.deliveries.push([ctx.topic, ctx.attempt]);
    if (retried.failing) throw new ProbeRefusalError(`refused seq ${payload.seq}`, new TypeError('not yet'));
  }
}

/** A group on `topic` with Spring's non-blocking retries: delays 1000 and 2000 ms, as SpringRetryChain's. */
function retryFeature(groupId: string, topic: string) {
  @Module({
    imports: [
      KafkaModule.forFeature({
        groupId,
        fromBeginning: true,
        retry: { topics: true, delaysMs: [1_000, 2_000] },
        topicVariables: { RETRY_TOPIC: topic },
      }),
    ],
    controllers: [RetryingController],
  })
  class RetryFeature {}
  return RetryFeature;
}

function feature(
  groupId: string,
  controller: new () => unknown,
  variables: Record<string, string>,
  fromBeginning = false,
) {
  @Module({
    imports: [
      KafkaModule.forFeature({
        groupId,
        fromBeginning,
        retry: { attempts: 1 },
        topicVariables: variables,
      }),
    ],
    controllers: [controller],
  })
  class ProbeFeature {}
  return ProbeFeature;
}

/** Kafka's kafka-consumer-groups.sh, that is its main class on the broker's jars, against the test broker. */
function consumerGroupCommand(...args: string[]): Promise<ToolRun> {
  return kafkaTool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', testBrokers(), args);
}

/** The rows of a table the tool printed (a header line of upper-case column names, then one line per row). */
function table(output: string, firstColumn: string): Record<string, string>[] {
  const lines = output.split('\n').filter((line) => line.trim() !== '');
  const headerAt = lines.findIndex((line) => line.trim().startsWith(`${firstColumn} `));
  if (headerAt < 0) throw new Error(`no table starting with ${firstColumn} in:\n${output}`);
  const columns = lines[headerAt].trim().split(/\s+/);
  return lines.slice(headerAt + 1).map((line) => {
    const cells = line.trim().split(/\s+/);
    return Object.fromEntries(columns.map((column, i) => [column, cells[i]]));
  });
}

/** Offsets handled since `from` (an index into `handled`) for `topic`, as "partition:offset", in order. */
function handledSince(from: number, topic: string): string[] {
  return handled
    .slice(from)
    .filter((h) => h.topic === topic)
    .map((h) => `${h.partition}:${h.offset}`);
}

/** The example's CLI (`npm run kafka -- <args>`) against the test broker: what it printed. */
function kafkaCli(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['scripts/kafka-cli.mjs', ...args],
      { env: { ...process.env, KAFKA_BROKERS: testBrokers().join(',') }, timeout: 60_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
}

/** `npm run kafka -- tail <topic> --max 1`: what it prints of the topic's first record. */
function kafkaCliTail(topic: string): Promise<string> {
  return kafkaCli('tail', topic, '--max', '1', '--idle-ms', '30000');
}

/** What the library logged about partitions of `groupId` that start without a committed offset. */
function startLines(log: { mock: { calls: unknown[][] } }, groupId: string): string[] {
  const prefix = `Group "${groupId}" has no committed offset for `;
  return log.mock.calls
    .map(([message]) => String(message))
    .filter((message) => message.startsWith(prefix))
    .map((message) => message.slice(prefix.length));
}

function range(partition: number, from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `${partition}:${from + i}`);
}

describeJava('outside-in probe 3: Kafka admin tools on a running and a stopped library group', () => {
  const kafka = new KafkaTestClient();
  const topic = uniqueName('tools');
  const groupId = uniqueName('tools-group');
  let app: INestApplication;
  let groups: KafkaGroups;

  async function produce(partition: number, count: number, timestamp?: (i: number) => number): Promise<void> {
    await kafka.produce(
      topic,
      Array.from({ length: count }, (_, i) => ({
        partition,
        value: JSON.stringify({ seq: i }),
        ...(timestamp ? { timestamp: String(timestamp(i)) } : {}),
      })),
    );
  }

  async function startGroup(): Promise<void> {
    await groups.start(groupId);
    await kafka.waitForStableGroup(groupId, 1);
  }

  beforeAll(async () => {
    await kafka.createTopic(topic, 2);
    ({ app } = await startTestApp([feature(groupId, ToolsController, { TOOLS_TOPIC: topic })]));
    groups = app.get(KafkaGroups);
    await kafka.waitForStableGroup(groupId, 1);
  });

  afterAll(async () => {
    await app?.close();
    await kafka.closeAll();
  });

  test('--describe --members --verbose and --describe --offsets parse the running group', async () => {
    await produce(0, 5);
    await produce(1, 5);
    await kafka.waitForCommittedToEnd(groupId, topic);
    const described = (await (await kafka.admin()).describeGroups([groupId])).groups[0];
    expect(described.members).toHaveLength(1);
    const member = described.members[0];

    const members = await consumerGroupCommand('--describe', '--group', groupId, '--members', '--verbose');
    expect(members.stderr).not.toMatch(/Exception|Error/);
    expect(members.code).toBe(0);
    expect(table(members.stdout, 'GROUP')).toEqual([
      {
        GROUP: groupId,
        'CONSUMER-ID': member.memberId,
        HOST: member.clientHost,
        'CLIENT-ID': member.clientId,
        '#PARTITIONS': '2',
        // Kafka 4.x's columns; the epochs and target are KIP-848's, "-" for a classic group.
        'CURRENT-EPOCH': '-',
        'CURRENT-ASSIGNMENT': `${topic}:0,1`,
        'TARGET-EPOCH': '-',
        'TARGET-ASSIGNMENT': '-',
      },
    ]);

    const offsets = await consumerGroupCommand('--describe', '--group', groupId);
    expect(offsets.code).toBe(0);
    const rows = table(offsets.stdout, 'GROUP').sort((a, b) => Number(a.PARTITION) - Number(b.PARTITION));
    expect(
      rows.map((row) => [row.TOPIC, row.PARTITION, row['CURRENT-OFFSET'], row['LOG-END-OFFSET'], row.LAG]),
    ).toEqual([
      [topic, '0', '5', '5', '0'],
      [topic, '1', '5', '5', '0'],
    ]);
    expect(rows.map((row) => [row['CONSUMER-ID'], row.HOST, row['CLIENT-ID']])).toEqual([
      [member.memberId, member.clientHost, member.clientId],
      [member.memberId, member.clientHost, member.clientId],
    ]);
  });

  test('a KIP-848 group (a Java member with group.protocol=consumer): `npm run kafka -- groups describe` shows it as --describe does', async () => {
    const mixedTopic = uniqueName('mixed');
    const mixedGroup = uniqueName('mixed-group');
    await kafka.createTopic(mixedTopic, 2);
    const { app: nest } = await startTestApp([
      feature(mixedGroup, ToolsController, { TOOLS_TOPIC: mixedTopic }),
    ]);
    const classDir = await compileInteropConsumer();
    const java = new JavaConsumer({
      brokers: testBrokers(),
      groupId: mixedGroup,
      topic: mixedTopic,
      clientId: 'zz-cli-java',
      maxRuntimeMs: 110_000,
      classDir,
      groupProtocol: 'consumer',
    });
    try {
      await java.waitUntil('one partition', 90_000, () => java.assignment?.length === 1);
      await kafka.produce(mixedTopic, [
        { partition: 0, value: JSON.stringify({ seq: 0 }) },
        { partition: 1, value: JSON.stringify({ seq: 1 }) },
        { partition: 1, value: JSON.stringify({ seq: 2 }) },
      ]);
      await kafka.waitForCommittedToEnd(mixedGroup, mixedTopic, 60_000);

      const tool = await consumerGroupCommand('--describe', '--group', mixedGroup);
      expect(tool.code).toBe(0);
      const byPartition = (a: Record<string, string>, b: Record<string, string>) =>
        Number(a.PARTITION) - Number(b.PARTITION);
      const expected = table(tool.stdout, 'GROUP')
        .sort(byPartition)
        .map((row) => [
          row.TOPIC,
          row.PARTITION,
          row['CURRENT-OFFSET'],
          row['LOG-END-OFFSET'],
          row.LAG,
          row['CONSUMER-ID'],
          row.HOST,
          row['CLIENT-ID'],
        ]);
      expect(expected.map((row) => row.slice(0, 5))).toEqual([
        [mixedTopic, '0', '1', '1', '0'],
        [mixedTopic, '1', '2', '2', '0'],
      ]);
      expect(new Set(expected.map((row) => row[7]))).toEqual(new Set(['e2e-app', 'zz-cli-java']));

      const cli = await kafkaCli('groups', 'describe', mixedGroup);
      expect(cli).toContain(`group ${mixedGroup}: Stable, 2 member(s), consumer protocol\n`);
      expect(
        table(cli, 'TOPIC')
          .sort(byPartition)
          .map((row) => [
            row.TOPIC,
            row.PARTITION,
            row.COMMITTED,
            row.END,
            row.LAG,
            row.MEMBER,
            row.HOST,
            row.CLIENT,
          ]),
      ).toEqual(expected);
    } finally {
      await java.stop(15_000);
      await nest.close();
      await removeCompiledConsumer(classDir);
    }
  });

  test('--reset-offsets --to-offset, --shift-by and --to-datetime on the stopped group: it resumes exactly there', async () => {
    // Records 5-9 of each partition one second apart, after records 0-4 (the broker takes up to 1 h ahead).
    const base = Date.now() + 10_000;
    await produce(0, 5, (i) => base + i * 1_000);
    await produce(1, 5, (i) => base + i * 1_000);
    await kafka.waitForCommittedToEnd(groupId, topic);
    await groups.stop(groupId);

    const toOffset = await consumerGroupCommand(
      '--reset-offsets',
      '--group',
      groupId,
      '--topic',
      `${topic}:0`,
      '--to-offset',
      '3',
      '--execute',
    );
    expect(toOffset.code).toBe(0);
    const shiftBy = await consumerGroupCommand(
      '--reset-offsets',
      '--group',
      groupId,
      '--topic',
      `${topic}:1`,
      '--shift-by',
      '-4',
      '--execute',
    );
    expect(shiftBy.code).toBe(0);
    expect(await kafka.offsets(groupId, topic)).toEqual([
      { partition: 0, committed: 3, end: 10 },
      { partition: 1, committed: 6, end: 10 },
    ]);

    let from = handled.length;
    await startGroup();
    await kafka.waitForCommittedToEnd(groupId, topic);
    await waitFor('the replay handled', 30_000, () => handledSince(from, topic).length >= 11);
    expect(handledSince(from, topic).sort()).toEqual([...range(0, 3, 10), ...range(1, 6, 10)].sort());

    // The third record of the timed ones (offset 7) onwards: its timestamp, as the tool parses it (UTC).
    await groups.stop(groupId);
    const at = new Date(base + 2 * 1_000).toISOString().replace(/Z$/, '');
    const toDatetime = await consumerGroupCommand(
      '--reset-offsets',
      '--group',
      groupId,
      '--topic',
      topic,
      '--to-datetime',
      at,
      '--execute',
    );
    expect(toDatetime.code).toBe(0);
    expect(await kafka.offsets(groupId, topic)).toEqual([
      { partition: 0, committed: 7, end: 10 },
      { partition: 1, committed: 7, end: 10 },
    ]);
    from = handled.length;
    await startGroup();
    await kafka.waitForCommittedToEnd(groupId, topic);
    await waitFor('the replay handled', 30_000, () => handledSince(from, topic).length >= 6);
    expect(handledSince(from, topic).sort()).toEqual([...range(0, 7, 10), ...range(1, 7, 10)].sort());
  });

  test('--delete-offsets --topic: refused while the group runs; when stopped, the group starts as configured', async () => {
    const running = await consumerGroupCommand('--delete-offsets', '--group', groupId, '--topic', topic);
    // KIP-496: the coordinator refuses to delete the offsets of a topic the group's members subscribe to.
    expect(running.stdout).toMatch(
      new RegExp(`${topic} +0 +Error: org.apache.kafka.common.errors.GroupSubscribedToTopicException`),
    );
    expect(await kafka.offsets(groupId, topic)).toEqual([
      { partition: 0, committed: 10, end: 10 },
      { partition: 1, committed: 10, end: 10 },
    ]);
    let from = handled.length;
    await produce(0, 2);
    await kafka.waitForCommittedToEnd(groupId, topic);
    await waitFor('the records after the refusal', 30_000, () => handledSince(from, topic).length >= 2);
    expect(handledSince(from, topic)).toEqual(range(0, 10, 12));

    await groups.stop(groupId);
    const stopped = await consumerGroupCommand('--delete-offsets', '--group', groupId, '--topic', topic);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(/succeed/i);
    expect(await kafka.offsets(groupId, topic)).toEqual([
      { partition: 0, committed: -1, end: 12 },
      { partition: 1, committed: -1, end: 10 },
    ]);
    from = handled.length;
    const log = jest.spyOn(Logger.prototype, 'log');
    try {
      await startGroup();
      // fromBeginning: false, as configured: both partitions start at their log end, and the log says so.
      await produce(1, 1);
      await waitFor(
        'the record written after the restart',
        30_000,
        () => handledSince(from, topic).length >= 1,
      );
      expect(handledSince(from, topic)).toEqual(['1:10']);
      expect(startLines(log, groupId)).toEqual([
        `${topic}[0] at 12, ${topic}[1] at 10: starting there (the log end, fromBeginning: false)`,
      ]);
    } finally {
      log.mockRestore();
    }
  });

  test('--delete of the empty group, then a restart: a new group, started as configured', async () => {
    await groups.stop(groupId);
    const deleted = await consumerGroupCommand('--delete', '--group', groupId);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(/Deletion of requested consumer groups \('[^']+'\) was successful/);
    const { groups: listed } = await (await kafka.admin()).listGroups();
    expect(listed.map((group) => group.groupId)).not.toContain(groupId);

    const from = handled.length;
    const log = jest.spyOn(Logger.prototype, 'log');
    try {
      await startGroup();
      await produce(0, 1);
      await produce(1, 1);
      await waitFor(
        'the records written after the restart',
        30_000,
        () => handledSince(from, topic).length >= 2,
      );
      await kafka.waitForCommittedToEnd(groupId, topic);
      expect(handledSince(from, topic).sort()).toEqual(['0:12', '1:11']);
      expect(startLines(log, groupId)).toEqual([
        `${topic}[0] at 12, ${topic}[1] at 11: starting there (the log end, fromBeginning: false)`,
      ]);
    } finally {
      log.mockRestore();
    }
  });
});

describeJava('outside-in probe 3: Spring Kafka reading and writing dead letters with the library', () => {
  const kafka = new KafkaTestClient();
  let classDir: string;

  beforeAll(async () => {
    classDir = await springPrograms!;
  });

  afterAll(async () => {
    await kafka.closeAll();
  });

  test("Spring's listener container reads the library's dead letters: every DLT header equals the source record's", async () => {
    const refused = uniqueName('refused');
    const groupId = uniqueName('refusing-group');
    const springRefused = uniqueName('spring-refused');
    await kafka.createTopic(refused, 2);
    await kafka.createTopic(`${refused}-dlt`, 2);
    await kafka.createTopic(springRefused, 1);
    await kafka.createTopic(`${springRefused}-dlt`, 1);
    const { app } = await startTestApp([feature(groupId, RefusingController, { REFUSED_TOPIC: refused })]);
    const base = Date.now() - 10_000;
    try {
      await kafka.waitForStableGroup(groupId, 1);
      await kafka.produce(refused, [
        { partition: 0, key: 'k0', value: JSON.stringify({ seq: 0 }), timestamp: String(base) },
        { partition: 1, key: 'k1', value: JSON.stringify({ seq: 1 }), timestamp: String(base + 1) },
        { partition: 1, key: null, value: JSON.stringify({ seq: 2 }), timestamp: String(base + 2) },
      ]);
      await kafka.waitForCommittedToEnd(groupId, refused);
    } finally {
      await app.close();
    }
    // The same kind of failure dead-lettered by Spring's own DeadLetterPublishingRecoverer, for its header set.
    await kafka.produce(springRefused, [{ key: 's0', value: JSON.stringify({ seq: 0 }) }]);
    await runSpringDeadLetters(classDir, 'recover', springRefused, 1, uniqueName('spring-group'));

    const ours = springRecords(
      await runSpringDeadLetters(classDir, 'read', `${refused}-dlt`, 3, uniqueName('spring-reader')),
    ).sort((a, b) => a.value!.localeCompare(b.value!));
    const [spring] = springRecords(
      await runSpringDeadLetters(classDir, 'read', `${springRefused}-dlt`, 1, uniqueName('spring-reader')),
    );

    const expected = (
      seq: number,
      partition: number,
      offset: number,
      key: string | null,
    ): SpringDeadLetter => ({
      topic: `${refused}-dlt`,
      partition,
      offset: expect.any(Number) as unknown as number,
      key,
      value: JSON.stringify({ seq }),
      originalTopic: refused,
      originalPartition: partition,
      originalOffset: String(offset),
      originalTimestamp: String(base + seq),
      originalTimestampType: 'CreateTime',
      originalConsumerGroup: groupId,
      // Spring's cause header names the exception the listener threw (its recoverer unwraps only the container's
      // ListenerExecutionFailedException), and the thrown exception's own causes follow as "Caused by:" lines.
      exceptionFqcn: 'ProbeRefusalError',
      exceptionCauseFqcn: 'ProbeRefusalError',
      exceptionMessage: `refused seq ${seq}`,
      exceptionStacktraceFirstLine: `ProbeRefusalError: refused seq ${seq}`,
      exceptionStacktraceCauses: ['TypeError: downstream said no'],
      originalTopics: [refused],
      dltHeaderNames: spring.dltHeaderNames,
    });
    expect(ours).toEqual([expected(0, 0, 0, 'k0'), expected(1, 1, 0, 'k1'), expected(2, 1, 1, null)]);
    // What Spring itself wrote, read the same way: the names compared above are Spring's whole set.
    expect(spring).toMatchObject({
      originalTopic: springRefused,
      originalPartition: 0,
      originalOffset: '0',
      originalTimestampType: 'CreateTime',
      exceptionFqcn: 'org.springframework.kafka.listener.ListenerExecutionFailedException',
      exceptionCauseFqcn: 'java.lang.IllegalStateException',
      exceptionStacktraceCauses: [
        expect.stringMatching(/^java\.lang\.IllegalStateException: spring refused /),
        'java.lang.IllegalArgumentException: the root cause',
      ],
    });
    expect(spring.exceptionMessage).toMatch(/; spring refused \{"seq":0\}$/);
  });

  test("Spring's DeadLetterPublishingRecoverer writes a dead letter: the library reads it, and dead-letters it again as Spring would", async () => {
    const source = uniqueName('spring-source');
    const springDlt = `${source}-dlt`;
    const groupId = uniqueName('spring-dlt-reader');
    await kafka.createTopic(source, 1);
    await kafka.createTopic(springDlt, 1);
    await kafka.createTopic(`${springDlt}-dlt`, 1);
    const written = Date.now() - 5_000;
    await kafka.produce(source, [
      { key: 'sk', value: JSON.stringify({ seq: 7 }), timestamp: String(written) },
    ]);
    const springGroup = uniqueName('spring-group');
    await runSpringDeadLetters(classDir, 'recover', source, 1, springGroup);

    const from = handled.length;
    const { app } = await startTestApp([
      feature(groupId, SpringDltController, { SPRING_DLT: springDlt }, true),
    ]);
    try {
      await waitFor("the library's handler on Spring's dead letter", 60_000, () => handled.length > from);
      await kafka.waitForCommittedToEnd(groupId, springDlt);
    } finally {
      await app.close();
    }
    const { headers } = handled[from];
    const one = (name: string) => headers[name] as Buffer;
    expect(one(DLT_HEADERS.originalTopic).toString()).toBe(source);
    expect(one(DLT_HEADERS.originalPartition).readInt32BE()).toBe(0);
    expect(one(DLT_HEADERS.originalOffset).readBigInt64BE()).toBe(0n);
    expect(one(DLT_HEADERS.originalTimestamp).readBigInt64BE()).toBe(BigInt(written));
    expect(one(DLT_HEADERS.originalConsumerGroup).toString()).toBe(springGroup);
    expect(one(DLT_HEADERS.exceptionFqcn).toString()).toBe(
      'org.springframework.kafka.listener.ListenerExecutionFailedException',
    );

    // The library dead-letters Spring's dead letter in turn; Spring's recoverer (appendOriginalHeaders, its
    // default) would keep the first original-* values and append the new ones, the last naming the latest source.
    const [again] = springRecords(
      await runSpringDeadLetters(classDir, 'read', `${springDlt}-dlt`, 1, uniqueName('spring-reader')),
    );
    expect(again).toMatchObject({
      key: 'sk',
      originalTopic: springDlt,
      originalPartition: 0,
      originalOffset: '0',
      originalConsumerGroup: groupId,
      exceptionFqcn: 'ProbeRefusalError',
      exceptionMessage: 'refused again',
      originalTopics: [source, springDlt],
    });
    // The example's `npm run kafka -- tail` decodes every value of a repeated header.
    const tail = await kafkaCliTail(`${springDlt}-dlt`);
    expect(tail).toContain(`\n    kafka_dlt-original-topic: ${source}, ${springDlt}\n`);
    expect(tail).toContain('\n    kafka_dlt-original-partition: 0, 0\n');
    expect(tail).toContain('\n    kafka_dlt-original-offset: 0, 0\n');
  });
  test("Spring's non-blocking retry chain and the library's: same topics, same retry headers, each reads the other's retry records", async () => {
    const springTopic = uniqueName('spring-chain');
    const ourTopic = uniqueName('our-chain');
    const suffixes = ['', '-retry-1000', '-retry-2000', '-dlt'];
    for (const topic of [springTopic, ourTopic]) {
      for (const suffix of suffixes) await kafka.createTopic(`${topic}${suffix}`, 1);
    }
    const written = Date.now() - 3_000;
    await kafka.produce(springTopic, [{ value: JSON.stringify({ seq: 1 }), timestamp: String(written) }]);
    await kafka.produce(ourTopic, [{ value: JSON.stringify({ seq: 2 }), timestamp: String(written) }]);

    // Spring's chain, its listener failing: attempts 1-3 along its default topic names (created above: a name of
    // its own would have no topic, and its writes would fail), then its dead letter.
    expect(await runSpringRetryChain(classDir, springTopic, uniqueName('spring-chain'), 'fail', 1)).toEqual([
      [springTopic, 1],
      [`${springTopic}-retry-1000`, 2],
      [`${springTopic}-retry-2000`, 3],
    ]);
    // The library's chain, its handler failing, with the same delays.
    retried.failing = true;
    retried.deliveries.length = 0;
    const failing = await startTestApp([retryFeature(uniqueName('our-chain'), ourTopic)]);
    try {
      await waitFor("the library's dead letter", 60_000, async () => {
        const [end] = await (await kafka.admin()).fetchTopicOffsets(`${ourTopic}-dlt`);
        return end.high === '1';
      });
    } finally {
      await failing.app.close();
    }
    expect(retried.deliveries).toEqual([
      [ourTopic, 1],
      [`${ourTopic}-retry-1000`, 2],
      [`${ourTopic}-retry-2000`, 3],
    ]);

    // Hop by hop, the retry headers of both chains: every value appended, attempts as 4-byte ints, the original
    // timestamp and due times as Java's BigInteger.toByteArray() of a long.
    const retryHeaders = async (topic: string) => {
      const [message] = await kafka.readMessages(topic, 1);
      const values = (name: string) => {
        const value = message.headers![name];
        return (Array.isArray(value) ? value : [value]).map((v) => Buffer.from(v as Buffer));
      };
      const bigInteger = (bytes: Buffer) => BigInt.asIntN(64, BigInt(`0x${bytes.toString('hex')}`));
      return {
        attempts: values('retry_topic-attempts').map((v) =>
          v.length === 4 ? v.readInt32BE() : `length ${v.length}`,
        ),
        originalTimestamps: values('retry_topic-original-timestamp').map((v) => String(bigInteger(v))),
        // Each due time after the write: at least the hop's delay (the failure came later), shown as that delay
        // when within a minute of it, else as measured.
        dueAfterWrite: values('retry_topic-backoff-timestamp').map((v, hop) => {
          const after = Number(bigInteger(v)) - written;
          const delay = [1_000, 2_000, 0][hop];
          return after >= delay && after < delay + 60_000 ? delay : after;
        }),
      };
    };
    // Per hop: the attempts written so far, and each due time's delay (the dead letter is due at once).
    for (const [suffix, attempts, delays] of [
      ['-retry-1000', [2], [1_000]],
      ['-retry-2000', [2, 3], [1_000, 2_000]],
      ['-dlt', [2, 3, 4], [1_000, 2_000, 0]],
    ] as const) {
      const expected = {
        attempts,
        originalTimestamps: attempts.map(() => String(written)),
        dueAfterWrite: delays,
      };
      expect(await retryHeaders(`${springTopic}${suffix}`)).toEqual(expected);
      expect(await retryHeaders(`${ourTopic}${suffix}`)).toEqual(expected);
    }

    // Each side reads the other's records: the library's group on Spring's topics, Spring's on the library's.
    retried.failing = false;
    retried.deliveries.length = 0;
    const reading = await startTestApp([retryFeature(uniqueName('reads-spring'), springTopic)]);
    try {
      await waitFor(
        "the library's handler on Spring's three records",
        60_000,
        () => retried.deliveries.length >= 3,
      );
    } finally {
      await reading.app.close();
    }
    expect(retried.deliveries.sort()).toEqual([
      [springTopic, 1],
      [`${springTopic}-retry-1000`, 2],
      [`${springTopic}-retry-2000`, 3],
    ]);
    // The example's `npm run kafka -- tail` decodes the retry chain's headers too.
    const tail = await kafkaCliTail(`${springTopic}-dlt`);
    expect(tail).toContain('\n    retry_topic-attempts: 2, 3, 4\n');
    expect(tail).toContain(`\n    retry_topic-original-timestamp: ${written}, ${written}, ${written}\n`);
    const springReads = await runSpringRetryChain(
      classDir,
      ourTopic,
      uniqueName('spring-reads'),
      'succeed',
      3,
    );
    expect(springReads.sort()).toEqual([
      [ourTopic, 1],
      [`${ourTopic}-retry-1000`, 2],
      [`${ourTopic}-retry-2000`, 3],
    ]);
  });
});
