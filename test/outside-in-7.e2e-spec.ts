/**
 * Outside-in probe 7: what an operator sees of a group (the Prometheus metrics, the terminus health indicator, the
 * status service, the logs) against what Kafka's own tool says of it (ConsumerGroupCommand --describe, run from
 * the broker's jars), in normal operation and in incidents. See docs/RELIABILITY.md, findings 22 on.
 *
 * The shared broker of the e2e step: nothing here needs a broker setting of its own.
 */
import { afterAll, afterEach, describe, expect, jest, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  type KafkaGroupContext,
  KafkaHandler,
  type KafkaFeatureOptions,
  KafkaGroups,
  KafkaModule,
  KafkaStatusModule,
  KafkaStatusService,
} from 'nest-kafka-groups';
import { type KafkaGroupHealth, KafkaHealthIndicator, KafkaHealthModule } from 'nest-kafka-groups/health';
import { KafkaMetricsModule, KafkaMetricsService } from 'nest-kafka-groups/metrics';
import { KafkaTestClient, testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import {
  compileInteropConsumer,
  JavaConsumer,
  kafkaTool,
  removeCompiledConsumer,
} from './support/java/java-consumer.js';
import { errorLinesSoFar, expectErrorLines } from './support/error-lines.js';
import { javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

jest.setTimeout(120_000);

const suite = javaAvailable() ? describe : describe.skip;
/** test/support/java/InteropConsumer.java's session.timeout.ms and heartbeat.interval.ms. */
const JAVA_SESSION_MS = 6_000;
const JAVA_HEARTBEAT_MS = 500;

/** One row of `kafka-consumer-groups --describe --group <g>`, by partition. */
interface ToolRow {
  topic: string;
  partition: number;
  current: number | null;
  logEnd: number;
  lag: number | null;
  consumerId: string | null;
}

/** Kafka's own view of a group's offsets: `kafka-consumer-groups --describe --group <groupId>`. */
async function toolDescribe(groupId: string): Promise<ToolRow[]> {
  const run = await kafkaTool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', testBrokers(), [
    '--describe',
    '--group',
    groupId,
  ]);
  if (run.code !== 0) throw new Error(`kafka-consumer-groups failed (${run.code}):\n${run.stderr}`);
  const lines = run.stdout.split('\n').filter((line) => line.trim() !== '');
  const headerAt = lines.findIndex((line) => line.trim().startsWith('GROUP '));
  if (headerAt < 0) throw new Error(`no table in:\n${run.stdout}\n${run.stderr}`);
  const columns = lines[headerAt].trim().split(/\s+/);
  const number = (cell: string) => (cell === '-' ? null : Number(cell));
  return lines
    .slice(headerAt + 1)
    .map((line) =>
      Object.fromEntries(
        line
          .trim()
          .split(/\s+/)
          .map((cell, i) => [columns[i], cell]),
      ),
    )
    .map((row) => ({
      topic: row.TOPIC,
      partition: Number(row.PARTITION),
      current: number(row['CURRENT-OFFSET']),
      logEnd: Number(row['LOG-END-OFFSET']),
      lag: number(row.LAG),
      consumerId: row['CONSUMER-ID'] === '-' ? null : row['CONSUMER-ID'],
    }))
    .sort((a, b) => a.partition - b.partition);
}

/** Kafka's own view of a group's members: `kafka-consumer-groups --describe --group <g> --members`, client ids. */
async function toolMembers(groupId: string): Promise<string[]> {
  const run = await kafkaTool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', testBrokers(), [
    '--describe',
    '--group',
    groupId,
    '--members',
  ]);
  if (run.code !== 0) throw new Error(`kafka-consumer-groups failed (${run.code}):\n${run.stderr}`);
  const lines = run.stdout.split('\n').filter((line) => line.trim() !== '');
  const headerAt = lines.findIndex((line) => line.trim().startsWith('GROUP '));
  // "Consumer group ... has no active members." prints no table.
  if (headerAt < 0) return [];
  const columns = lines[headerAt].trim().split(/\s+/);
  const clientAt = columns.indexOf('CLIENT-ID');
  return lines
    .slice(headerAt + 1)
    .map((line) => line.trim().split(/\s+/)[clientAt])
    .sort();
}

/** The samples of one metric in Prometheus text, by their label set as written. */
function samples(text: string, metric: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const labels = line.slice(metric.length, line.lastIndexOf(' '));
    found.set(labels, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return found;
}

/** Members of the group as the library's metrics give them: [coordinator's classic members, joined here]. */
async function metricMembers(app: INestApplication, groupId: string): Promise<[number, number]> {
  const text = await app.get(KafkaMetricsService).metrics();
  return [
    samples(text, 'kafka_consumer_group_coordinator_members').get(
      `{group="${groupId}",protocol="classic"}`,
    ) ?? -1,
    samples(text, 'kafka_consumer_group_members').get(`{group="${groupId}",state="joined"}`) ?? -1,
  ];
}

/** The library's lag per partition of `topic`, from the metrics an operator scrapes. */
async function metricLag(
  app: INestApplication,
  groupId: string,
  topic: string,
): Promise<(number | undefined)[]> {
  const text = await app.get(KafkaMetricsService).metrics();
  const lag = samples(text, 'kafka_consumer_group_lag');
  return [0, 1, 2].map((p) => lag.get(`{group="${groupId}",topic="${topic}",partition="${p}"}`));
}

interface Behaviour {
  /** Records whose seq is here fail every attempt. */
  failing: Set<number>;
  /** Records whose seq is here wait for this promise. */
  holding: Map<number, Promise<void>>;
  handled: { partition: number; offset: number; seq: number }[];
}

function probeFeature(
  groupId: string,
  topic: string,
  behaviour: Behaviour,
  options: Omit<KafkaFeatureOptions, 'groupId'>,
) {
  @Controller()
  class ProbeController {
    @KafkaHandler('${TOPIC}')
    async handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext): Promise<void> {
      await behaviour.holding.get(payload.seq);
      if (behaviour.failing.has(payload.seq)) throw new Error(`seq ${payload.seq} refused`);
      behaviour.handled.push({ partition: ctx.partition, offset: Number(ctx.offset), seq: payload.seq });
    }
  }
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, ...options })],
    controllers: [ProbeController],
  })
  class ProbeFeature {}
  return ProbeFeature;
}

suite('outside-in 7: the operator view against kafka-consumer-groups', () => {
  const kafka = new KafkaTestClient({ clientId: 'outside-in-7' });
  const apps: INestApplication[] = [];

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await kafka.closeAll();
  });

  async function start(
    groupId: string,
    topic: string,
    behaviour: Behaviour,
    options: Omit<KafkaFeatureOptions, 'groupId'> = {},
  ) {
    const { app } = await startTestApp([probeFeature(groupId, topic, behaviour, options)], {}, [
      KafkaStatusModule,
      KafkaHealthModule,
      KafkaMetricsModule,
    ]);
    apps.push(app);
    return app;
  }

  async function produce(topic: string, partition: number, seqs: number[]) {
    await kafka.produce(
      topic,
      seqs.map((seq) => ({ partition, value: JSON.stringify({ seq }) })),
    );
  }

  /** Per partition [tool lag, metric lag], the tool's "-" (nothing committed) as null. */
  async function lagsAgree(app: INestApplication, groupId: string, topic: string) {
    const [tool, metric] = await Promise.all([toolDescribe(groupId), metricLag(app, groupId, topic)]);
    return { tool: tool.map((row) => row.lag), metric, current: tool.map((row) => row.current) };
  }

  test("a handler past maxProcessingTimeMs that ignores ctx.signal: one ERROR naming the handler, topic, partition, offset and setting, /health down naming the partition while it runs, up once it returns; the metric lag is the tool's throughout", async () => {
    const topic = uniqueName('o7-overdue');
    const groupId = uniqueName('o7-overdue');
    await kafka.createTopic(topic, 3);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // seq 2005 (partition 2, offset 5) hangs until released, whatever its signal says.
    const behaviour: Behaviour = { failing: new Set(), holding: new Map([[2005, held]]), handled: [] };
    const app = await start(groupId, topic, behaviour, { maxProcessingTimeMs: 1_500 });
    const health = () =>
      app.get(KafkaHealthIndicator).groupsCheck('kafka-groups')['kafka-groups'] as {
        status: string;
        groups: Record<string, KafkaGroupHealth>;
      };
    const overdue = new RegExp(
      `ProbeController\\.handle on ${topic}\\[2\\]@5 ran longer than maxProcessingTimeMs \\(1500 ms\\)`,
    );
    // Released at the end whatever happens, or the application's close would wait for the handler.
    try {
      await kafka.waitForStableGroup(groupId, 1);
      await produce(topic, 0, [0, 1, 2]);
      await produce(topic, 2, [2000, 2001, 2002, 2003, 2004, 2005, 2006]);
      await waitFor(
        'partition 2 up to its offset 5',
        30_000,
        () => behaviour.handled.filter((h) => h.partition === 2).length === 5,
      );

      expectErrorLines(overdue);
      await waitFor('/health down naming the overdue handler', 10_000, () => health().status === 'down');
      const problems = health().groups[groupId].problems ?? [];
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`partition ${topic}:2 is stopped: .*`));
      expect(problems[0]).toMatch(overdue);
      expect(problems[0]).toMatch(/has not given up: it still runs$/);
      const errors = errorLinesSoFar().filter((line) => overdue.test(line));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/has not given up/);
      const stuck = await lagsAgree(app, groupId, topic);
      expect(stuck.metric).toEqual(stuck.tool.map((lag, p) => lag ?? [3, 0, 7][p]));
    } finally {
      release();
    }
    await waitFor('/health up once the handler returned', 10_000, () => health().status === 'up');
    await kafka.waitForCommittedToEnd(groupId, topic);
    const drained = await lagsAgree(app, groupId, topic);
    expect(drained).toEqual({ tool: [0, null, 0], metric: [0, 0, 0], current: [3, null, 7] });
    expect(behaviour.handled.filter((h) => h.partition === 2).map((h) => h.offset)).toEqual([
      0, 1, 2, 3, 4, 5, 6,
    ]);
    expect(errorLinesSoFar().filter((line) => overdue.test(line))).toHaveLength(1);
  });
  test("lag as the metric, the status service and kafka-consumer-groups give it: drained, paused with records waiting, stopped after a seek back, drained again; /health up throughout (a pause and a stop are the operator's)", async () => {
    const topic = uniqueName('o7-lag');
    const groupId = uniqueName('o7-lag');
    await kafka.createTopic(topic, 3);
    const behaviour: Behaviour = { failing: new Set(), holding: new Map(), handled: [] };
    const app = await start(groupId, topic, behaviour);
    const groups = app.get(KafkaGroups);
    const healthy = () => app.get(KafkaHealthIndicator).groupsCheck('kafka-groups')['kafka-groups'].status;
    /** Tool and metric agree on every partition; the status service says the same; returns the tool's lags. */
    const agreed = async () => {
      const seen = await lagsAgree(app, groupId, topic);
      expect(seen.metric).toEqual(seen.tool);
      const status = await app.get(KafkaStatusService).group(groupId);
      expect(status!.partitions!.map((p) => p.lag)).toEqual(seen.tool);
      expect(status!.partitions!.map((p) => p.committedOffset)).toEqual(seen.current);
      return seen.tool;
    };
    await kafka.waitForStableGroup(groupId, 1);
    for (const partition of [0, 1, 2]) await produce(topic, partition, [0, 1, 2, 3, 4]);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(await agreed()).toEqual([0, 0, 0]);

    groups.pause(groupId);
    await produce(topic, 0, [5, 6, 7]);
    expect(await agreed()).toEqual([3, 0, 0]);
    expect(healthy()).toBe('up');
    groups.resume(groupId);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(await agreed()).toEqual([0, 0, 0]);

    await groups.stop(groupId);
    await groups.seek(groupId, { topic, partition: 1, offset: 2 });
    expect(await agreed()).toEqual([0, 3, 0]);
    expect(healthy()).toBe('up');
    const handledBefore = behaviour.handled.length;
    await groups.start(groupId);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(await agreed()).toEqual([0, 0, 0]);
    expect(behaviour.handled.slice(handledBefore).map((h) => `${h.partition}:${h.offset}`)).toEqual([
      '1:2',
      '1:3',
      '1:4',
    ]);
    expect(healthy()).toBe('up');
  });

  test("members as the metrics and /health give them against kafka-consumer-groups --members: a Java member joins and is SIGKILLed, a second process joins and stops; the metric is the tool's throughout, /health up, no ERROR line", async () => {
    const topic = uniqueName('o7-members');
    const groupId = uniqueName('o7-members');
    await kafka.createTopic(topic, 3);
    const classDir = await compileInteropConsumer();
    try {
      const behaviour: Behaviour = { failing: new Set(), holding: new Map(), handled: [] };
      const app = await start(groupId, topic, behaviour);
      const statuses = new Set<string>();
      const health = () => {
        const status = app.get(KafkaHealthIndicator).groupsCheck('kafka-groups')['kafka-groups'].status;
        statuses.add(status);
        return status;
      };
      await kafka.waitForStableGroup(groupId, 1);
      expect(await toolMembers(groupId)).toEqual(['e2e-app']);
      expect(await metricMembers(app, groupId)).toEqual([1, 1]);

      const java = new JavaConsumer({
        brokers: testBrokers(),
        groupId,
        topic,
        classDir,
        clientId: 'o7-java',
      });
      await java.waitUntil('an assignment', 60_000, () => (java.assignment?.length ?? 0) > 0);
      await kafka.waitForStableGroup(groupId, 2);
      expect(await toolMembers(groupId)).toEqual(['e2e-app', 'o7-java']);
      expect(await metricMembers(app, groupId)).toEqual([2, 1]);
      expect(health()).toBe('up');

      // A crash: Kafka keeps the member until its session times out, and so does the metric. (The tool is asked
      // once the metric dropped it: a JVM's start on a loaded machine may outlast the session.)
      await java.kill();
      const killedAt = Date.now();
      expect(await metricMembers(app, groupId)).toEqual([2, 1]);
      await waitFor('the metric to drop the killed member', 30_000, async () => {
        health();
        return (await metricMembers(app, groupId))[0] === 1;
      });
      const droppedAfterMs = Date.now() - killedAt;
      expect(await toolMembers(groupId)).toEqual(['e2e-app']);
      // Not before the broker evicted it: the Java member's session timeout less its heartbeat interval.
      expect(droppedAfterMs).toBeGreaterThanOrEqual(JAVA_SESSION_MS - JAVA_HEARTBEAT_MS);
      await kafka.waitForStableGroup(groupId, 1);
      for (const partition of [0, 1, 2]) await produce(topic, partition, [partition]);
      await kafka.waitForCommittedToEnd(groupId, topic);

      // A second process of the service joins, then stops gracefully: no ERROR in either, the metric follows.
      const { app: second } = await startTestApp(
        [probeFeature(groupId, topic, behaviour, {})],
        { clientId: 'o7-second' },
        [KafkaStatusModule, KafkaHealthModule, KafkaMetricsModule],
      );
      apps.push(second);
      await kafka.waitForStableGroup(groupId, 2);
      expect(await toolMembers(groupId)).toEqual(['e2e-app', 'o7-second']);
      expect(await metricMembers(app, groupId)).toEqual([2, 1]);
      expect(await metricMembers(second, groupId)).toEqual([2, 1]);
      await apps.splice(apps.indexOf(second), 1)[0].close();
      await waitFor('the metric to drop the stopped member', 10_000, async () => {
        health();
        return (await metricMembers(app, groupId))[0] === 1;
      });
      expect(await toolMembers(groupId)).toEqual(['e2e-app']);
      await kafka.waitForStableGroup(groupId, 1);
      expect(health()).toBe('up');
      expect([...statuses]).toEqual(['up']);
    } finally {
      await removeCompiledConsumer(classDir);
    }
  });
});
