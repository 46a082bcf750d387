/**
 * The group coordinator dies (SIGKILL) and nothing can take its place: a cluster of three brokers whose
 * `__consumer_offsets` has one replica (KAFKA_OFFSETS_REPLICAS=1), so the group's coordinator lives on one broker,
 * while the data topic's partitions are led by the two others (RELIABILITY.md finding 15). Fetches keep working;
 * heartbeats and commits cannot until the broker is started again.
 *
 * The spec starts its own cluster on KAFKA_CLUSTER_PORT+10 (19702-19704, controllers 19705-19707), or reuses one
 * that answers there, and stops the one it started (or `.ci/run` started ahead for it: support/prestarted-cluster.ts). COORDINATOR_LOST_VERBOSE=1 prints the application's log lines.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  type KafkaFeatureOptions,
  KafkaGroupsServer,
  KafkaModule,
  KafkaStatusModule,
  KafkaStatusService,
} from 'nest-kafka-groups';
import { type KafkaGroupHealth, KafkaHealthIndicator, KafkaHealthModule } from 'nest-kafka-groups/health';
import {
  KafkaTestClient,
  TEST_CONSUMER_TUNING,
  TEST_RETRY,
  uniqueName,
  waitFor,
} from 'nest-kafka-groups/testing';
import {
  isBrokerReachable,
  killNode,
  localSettings,
  startBroker,
  startNode,
  stopBroker,
} from '../scripts/kafka-local-lib.mjs';
import { expectPortsFree, javaAvailable } from './support/local-machine.js';
import { CapturingLogger, produceUntilStopped, watchListenerWarnings } from './support/cluster-scenario.js';
import { prestartedCluster } from './support/prestarted-cluster.js';
import { recording, recordingFeature, resetRecording } from './support/recording-feature.js';

const PARTITIONS = 4;
const SESSION_TIMEOUT_MS = 6_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** How long the spec watches the group with its coordinator dead. */
const OUTAGE_MS = Number(process.env.COORDINATOR_LOST_OUTAGE_MS ?? 15_000);

const suite = javaAvailable() ? describe : describe.skip;

suite('group coordinator killed, no other broker can take its place (three brokers, offsets on one)', () => {
  let settings: ReturnType<typeof localSettings>;
  let brokers: string[];
  let startedHere = false;
  let kafka: KafkaTestClient;
  const killed: number[] = [];
  const apps: INestApplication[] = [];
  const listenerWarnings = watchListenerWarnings();

  beforeAll(async () => {
    const port = Number(process.env.KAFKA_CLUSTER_PORT ?? 19692) + 10;
    settings = localSettings({
      ...process.env,
      KAFKA_BROKERS: '',
      KAFKA_NODES: '3',
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(port + 3),
      KAFKA_OFFSETS_REPLICAS: '1',
    });
    if (await prestartedCluster(port, settings.localAddress)) startedHere = true;
    else if (!(await isBrokerReachable(settings.localAddress))) {
      await expectPortsFree(
        [0, 1, 2, 3, 4, 5].map((i) => port + i),
        'KAFKA_CLUSTER_PORT+10',
      );
      await startBroker({}, settings);
      startedHere = true;
    }
    brokers = settings.localAddress.split(',');
    kafka = new KafkaTestClient({ brokers, clientId: 'coordinator-lost-spec' });
    listenerWarnings.start();
  }, 240_000);

  // A node a test left killed is started again before the next test, not after each: after the last one, a cluster
  // started here is stopped anyway, and a reused one is left as it was found.
  beforeEach(async () => {
    for (const nodeId of killed.splice(0)) await startNode(nodeId - 1, settings);
  }, 240_000);

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    resetRecording();
  }, 240_000);

  afterAll(async () => {
    listenerWarnings.stop();
    await kafka?.closeAll();
    if (startedHere) await stopBroker({}, settings);
    else for (const nodeId of killed.splice(0)) await startNode(nodeId - 1, settings);
  }, 240_000);

  async function startApp(groupId: string, topic: string, feature: Partial<KafkaFeatureOptions> = {}) {
    @Module({
      imports: [
        KafkaModule.forRoot({
          brokers,
          clientId: 'coordinator-lost-app',
          fromBeginning: true,
          consumer: { ...TEST_CONSUMER_TUNING, sessionTimeout: SESSION_TIMEOUT_MS },
          clientRetry: TEST_RETRY,
          shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
        }),
        recordingFeature(groupId, topic, feature),
        KafkaHealthModule,
        KafkaStatusModule,
      ],
    })
    class CoordinatorLostAppModule {}
    const logger = new CapturingLogger(Boolean(process.env.COORDINATOR_LOST_VERBOSE));
    const app = await NestFactory.create(CoordinatorLostAppModule, { logger });
    app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
    await app.init();
    await app.startAllMicroservices();
    apps.push(app);
    return { app, logger, server: app.get(KafkaGroupsServer) };
  }

  /**
   * The group's coordinator (the one partition of __consumer_offsets, created by a first FindCoordinator) and a
   * topic whose partitions are led by the other two brokers only.
   */
  async function coordinatorAndTopic(groupId: string) {
    const admin = await kafka.admin();
    await waitFor('__consumer_offsets created', 60_000, async () => {
      await admin.describeGroups([groupId]);
      const { topics } = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
      return topics[0]?.partitions[0]?.leader > 0;
    });
    const { topics } = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
    expect(topics[0].partitions.map((p) => p.replicas.length)).toEqual([1]);
    const coordinator = topics[0].partitions[0].leader;
    const others = [1, 2, 3].filter((id) => id !== coordinator);
    const topic = uniqueName('coordinator-lost');
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          replicaAssignment: Array.from({ length: PARTITIONS }, (_, partition) => ({
            partition,
            replicas: [others[partition % 2]],
          })),
        },
      ],
    });
    return { coordinator, topic };
  }

  function handledSeqs(): Set<number> {
    return new Set(recording.deliveries.map((d) => d.seq));
  }

  /** How many times each partition@offset was handed to the handler. */
  function handledPerOffset(): Map<string, { times: number; firstAt: number }> {
    const counts = new Map<string, { times: number; firstAt: number }>();
    for (const d of recording.deliveries) {
      const key = `${d.partition}@${d.offset}`;
      const entry = counts.get(key) ?? { times: 0, firstAt: d.at };
      entry.times++;
      counts.set(key, entry);
    }
    return counts;
  }

  function linesSince(logger: CapturingLogger, since: number, level: string, pattern: RegExp) {
    return logger.lines.filter((l) => l.at >= since && l.level === level && pattern.test(l.message));
  }

  /** The groups check's problems for the group (Terminus's down result carries them), or [] when it is up. */
  function healthProblems(health: KafkaHealthIndicator, groupId: string): string[] {
    const result = health.groupsCheck('kafka-groups');
    const groups = (result['kafka-groups'] as unknown as { groups: Record<string, KafkaGroupHealth> }).groups;
    return groups[groupId]?.problems ?? [];
  }

  /** Each member's `lastError` in the status (KafkaStatusService, the UI's source). */
  function statusErrors(app: INestApplication, groupId: string): (string | null)[] {
    const group = app
      .get(KafkaStatusService)
      .localGroups()
      .find((g) => g.groupId === groupId);
    return group?.members.map((member) => member.lastError) ?? [];
  }

  /**
   * Kills the group's coordinator for OUTAGE_MS while records flow, then starts it again. `feature`: the group's
   * options (`commitIntervalMs: 0` takes kafkajs's own commit after every batch instead of the interval commit).
   */
  async function coordinatorOutage(feature: Partial<KafkaFeatureOptions>) {
    const groupId = uniqueName('coordinator-lost-group');
    const { coordinator, topic } = await coordinatorAndTopic(groupId);
    const coordinatorAddress = brokers[coordinator - 1];
    const { app, logger } = await startApp(groupId, topic, feature);
    const health = app.get(KafkaHealthIndicator);
    await kafka.waitForStableGroup(groupId, 1, 60_000);
    const producing = await produceUntilStopped(kafka, topic);
    await waitFor('records handled before the kill', 30_000, () => recording.deliveries.length >= 100);
    expect(healthProblems(health, groupId)).toEqual([]);

    const killedAt = performance.now();
    await killNode(coordinator - 1, settings);
    killed.push(coordinator);

    // Health goes down once the session lapsed without an answer, and says why; the member stops handing records
    // over at the same lapse. By then it had told at WARN, naming the group and the coordinator (the order of the
    // two, not a bound on elapsed time).
    const warnedAbout = () =>
      linesSince(logger, killedAt, 'warn', new RegExp(`${groupId}.*coordinator.*${coordinatorAddress}`));
    let warnedWhenDown: ReturnType<typeof warnedAbout> = [];
    const problems = await waitFor('health down', SESSION_TIMEOUT_MS + 15_000, () => {
      const found = healthProblems(health, groupId);
      if (found.length === 0) return undefined;
      warnedWhenDown = warnedAbout();
      return found;
    });
    expect(warnedWhenDown).not.toEqual([]);
    expect(problems.join('\n')).toMatch(new RegExp(`coordinator.*${coordinatorAddress}`));
    // The status (and the UI) says it in the member's lastError while it lasts.
    const [lastError] = statusErrors(app, groupId);
    expect(lastError).toMatch(new RegExp(`coordinator.*${coordinatorAddress}`));
    const downAt = performance.now();
    expect(downAt - killedAt).toBeGreaterThanOrEqual(SESSION_TIMEOUT_MS - 1_000);

    // The rest of the outage: health stays down, no crash, no rejoin.
    const outageEnds = killedAt + OUTAGE_MS;
    while (performance.now() < outageEnds) {
      expect(healthProblems(health, groupId)).not.toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(linesSince(logger, killedAt, 'warn', /crashed|stopped \(/)).toEqual([]);

    // The member may find the coordinator before startNode() saw the node listed: its line counts from here.
    const restartedAt = performance.now();
    await startNode(coordinator - 1, settings);
    killed.pop();
    await waitFor('health up again', 60_000, () => healthProblems(health, groupId).length === 0);
    // The status clears it with the recovery.
    const recovered = linesSince(
      logger,
      restartedAt,
      'log',
      new RegExp(`${groupId}.*coordinator.*answers again`),
    );
    expect(recovered).toHaveLength(1);
    expect(statusErrors(app, groupId)).toEqual([null]);

    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await producing.stop();
    const expected = new Set(producing.acknowledged);
    await waitFor(`every acknowledged record handled (${expected.size})`, 60_000, () =>
      [...expected].every((seq) => handledSeqs().has(seq)),
    );
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    // At-least-once: only what was handled after the kill (never committed) may come again, and once at most.
    const again = [...handledPerOffset().values()].filter((entry) => entry.times > 1);
    expect(again.filter((entry) => entry.firstAt < killedAt)).toEqual([]);
    expect(again.filter((entry) => entry.times > 2)).toEqual([]);
    expect(listenerWarnings.lines).toEqual([]);
    return { recovered: recovered[0] };
  }

  test(
    'coordinator dead for longer than the session: WARN naming the group and the coordinator, health down and ' +
      "the member's lastError in the status, recovery once it is back, every record handled and none more than " +
      'at-least-once allows',
    async () => {
      const { recovered } = await coordinatorOutage({});
      // No commit (with its coordinator lookup) at every batch end: 100 ms at least between failed ones, and none
      // once the member holds its batches back (about 19 a second without the backoff).
      const [, heartbeats, commits] = /\((\d+) heartbeat\(s\) and (\d+) commit\(s\) failed\)/.exec(
        recovered.message,
      )!;
      expect(Number(heartbeats)).toBeGreaterThan(0);
      expect(Number(commits)).toBeLessThanOrEqual(SESSION_TIMEOUT_MS / 100 + 10);
    },
    300_000,
  );

  test(
    "the same with commitIntervalMs 0 (a commit after every batch, on kafkajs's own path): the failed commits " +
      'are seen, WARN, health down, lastError, recovery',
    async () => {
      const { recovered } = await coordinatorOutage({ commitIntervalMs: 0 });
      // kafkajs's own commit path reports its failures too (it did not: heartbeats alone told of the outage).
      const [, commits] = /and (\d+) commit\(s\) failed\)/.exec(recovered.message)!;
      expect(Number(commits)).toBeGreaterThan(0);
    },
    300_000,
  );

  test('closing the application while the coordinator is dead ends within the shutdown timeout', async () => {
    const groupId = uniqueName('coordinator-lost-close');
    const { coordinator, topic } = await coordinatorAndTopic(groupId);
    const { app } = await startApp(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1, 60_000);
    const producing = await produceUntilStopped(kafka, topic);
    await waitFor('records handled before the kill', 30_000, () => recording.deliveries.length >= 50);
    await killNode(coordinator - 1, settings);
    killed.push(coordinator);
    // Past the session timeout: heartbeats and the lookups fail, the member holds its batches back.
    await new Promise((resolve) => setTimeout(resolve, SESSION_TIMEOUT_MS + 2_000));
    await producing.stop();
    const closing = performance.now();
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    expect(performance.now() - closing).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 5_000);
  }, 240_000);
});
