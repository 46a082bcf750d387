/**
 * The group coordinator dies (SIGKILL) under a running group, on a cluster of three brokers (replication factor 3,
 * min.insync.replicas 2): the members find the new coordinator as the Java consumer does (RELIABILITY.md finding
 * 12). Two members of one group in this process, records produced throughout; the coordinator is the leader of the
 * group's partition of `__consumer_offsets` (the launcher gives that topic one partition).
 *
 * Session timeout 30 s, longer than the controller takes to fence the dead broker and elect another coordinator:
 * the members stay in their generation (no join, same member ids), the new coordinator is found within a few
 * seconds of its election, and nothing is lost or handled twice. (What a member does once its session lapsed
 * without an answer is pinned by the runner's unit spec and measured by the fault rows: on this cluster the timing
 * of an election under load decides whether a member is evicted.)
 *
 * The spec starts its own cluster on KAFKA_CLUSTER_PORT (19692-19694, controllers 19695-19697), or reuses one that
 * answers there (left running, its killed nodes started again), and stops the one it started (or `.ci/run` started
 * ahead for it: support/prestarted-cluster.ts). FAILOVER_VERBOSE=1 prints the application's log and debug lines.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { KafkaGroupsServer, KafkaModule } from 'nest-kafka-groups';
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

const PARTITIONS = 6;
/** How long the spec watches the group after the kill: longer than kafkajs's retries to the dead broker took. */
const WATCH_AFTER_KILL_MS = 25_000;
/**
 * Bound on finding the new coordinator once the cluster elected it (heartbeat backoff, lookup, a loaded host): well
 * inside the watch, in which a member that never looked it up again (kafkajs without the fix) finds nothing.
 */
const FOUND_AFTER_ELECTION_MS = 15_000;

const suite = javaAvailable() ? describe : describe.skip;

suite('group coordinator killed (three brokers)', () => {
  let settings: ReturnType<typeof localSettings>;
  let brokers: string[];
  let startedHere = false;
  let kafka: KafkaTestClient;
  const killed: number[] = [];
  const apps: INestApplication[] = [];
  /** Node's MaxListenersExceededWarning lines: kafkajs added a 'connect' listener per reconnect attempt (finding 15). */
  const listenerWarnings = watchListenerWarnings();

  beforeAll(async () => {
    const port = Number(process.env.KAFKA_CLUSTER_PORT ?? 19692);
    settings = localSettings({
      ...process.env,
      KAFKA_BROKERS: '',
      KAFKA_NODES: '3',
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(port + 3),
    });
    if (await prestartedCluster(port, settings.localAddress)) startedHere = true;
    else if (!(await isBrokerReachable(settings.localAddress))) {
      await expectPortsFree(
        [0, 1, 2, 3, 4, 5].map((i) => port + i),
        'KAFKA_CLUSTER_PORT',
      );
      await startBroker({}, settings);
      startedHere = true;
    }
    brokers = settings.localAddress.split(',');
    kafka = new KafkaTestClient({ brokers, clientId: 'failover-spec' });
    listenerWarnings.start();
  }, 240_000);

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    resetRecording();
    // A reused cluster is left as it was found; one started here is stopped after all anyway.
    if (!startedHere) for (const nodeId of killed.splice(0)) await startNode(nodeId - 1, settings);
  }, 240_000);

  afterAll(async () => {
    listenerWarnings.stop();
    await kafka?.closeAll();
    if (startedHere) await stopBroker({}, settings);
  }, 240_000);

  async function startApp(groupId: string, topic: string, sessionTimeout: number) {
    @Module({
      imports: [
        KafkaModule.forRoot({
          brokers,
          clientId: 'failover-app',
          fromBeginning: true,
          consumer: { ...TEST_CONSUMER_TUNING, sessionTimeout },
          clientRetry: TEST_RETRY,
          shutdownTimeoutMs: 10_000,
        }),
        recordingFeature(groupId, topic, { concurrency: 2 }),
      ],
    })
    class FailoverAppModule {}
    const logger = new CapturingLogger(Boolean(process.env.FAILOVER_VERBOSE));
    const app = await NestFactory.create(FailoverAppModule, { logger });
    app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
    await app.init();
    await app.startAllMicroservices();
    apps.push(app);
    return { app, logger };
  }

  /**
   * Waits until every replica of the topic and of __consumer_offsets is in sync: a replica still catching up when
   * its leader dies cannot take over, and the partition would stay without a leader until the node is back.
   */
  async function waitForFullIsr(topic: string): Promise<void> {
    const admin = await kafka.admin();
    await waitFor(`every replica of ${topic} and __consumer_offsets in sync`, 60_000, async () => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic, '__consumer_offsets'] });
      return topics.every((t) => t.partitions.every((p) => p.isr.length === 3));
    });
  }

  /** The node id leading the group's partition of __consumer_offsets: the group coordinator. */
  async function coordinatorNode(): Promise<number> {
    const admin = await kafka.admin();
    const { topics } = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
    return topics[0].partitions[0].leader;
  }

  /** Kills the coordinator under load; returns when the cluster elected another and the spec watched long enough. */
  async function killCoordinatorUnderLoad(sessionTimeout: number) {
    resetRecording();
    const topic = uniqueName('failover');
    const groupId = uniqueName('failover-group');
    await kafka.createTopic(topic, PARTITIONS, [{ name: 'min.insync.replicas', value: '2' }], 3);
    const { logger } = await startApp(groupId, topic, sessionTimeout);
    const before = await kafka.waitForStableGroup(groupId, 2, 60_000);
    // After the group's join: a fresh cluster creates __consumer_offsets for the first group.
    await waitForFullIsr(topic);
    const producing = await produceUntilStopped(kafka, topic);
    await waitFor('records handled before the kill', 30_000, () => recording.deliveries.length >= 100);

    const dead = await coordinatorNode();
    const killedAt = performance.now();
    await killNode(dead - 1, settings);
    killed.push(dead);
    const elected = await waitFor('another coordinator elected', 60_000, async () => {
      const node = await coordinatorNode().catch(() => -1);
      return node > 0 && node !== dead ? { node, at: performance.now() } : undefined;
    });
    const watchUntil = Math.max(killedAt + WATCH_AFTER_KILL_MS, elected.at + 10_000);
    await new Promise((resolve) => setTimeout(resolve, watchUntil - performance.now()));
    await producing.stop();

    const expected = new Set(producing.acknowledged);
    await waitFor(`every acknowledged record handled (${expected.size})`, 120_000, () =>
      [...expected].every((seq) => handledSeqs().has(seq)),
    ).catch((error: Error) => {
      const missing = [...expected].filter((seq) => !handledSeqs().has(seq));
      throw new Error(`${error.message}; ${missing.length} never handled, from seq ${missing[0]}`);
    });
    const after = await stableMembers(groupId);
    return { groupId, logger, before, after, killedAt, elected, dead, expected };
  }

  /**
   * The group's members once it is Stable with two, asked of its coordinator only (the test client's
   * waitForStableGroup also lists every topic, which fails while a broker is down).
   */
  async function stableMembers(groupId: string): Promise<{ members: { memberId: string }[] }> {
    const admin = await kafka.admin();
    return waitFor(`group ${groupId} Stable with 2 members`, 60_000, async () => {
      const { groups } = await admin.describeGroups([groupId]);
      return groups[0]?.state === 'Stable' && groups[0].members.length === 2 ? groups[0] : undefined;
    });
  }

  function handledSeqs(): Set<number> {
    return new Set(recording.deliveries.map((d) => d.seq));
  }

  function handledTwice(): number {
    const seen = new Set<string>();
    let twice = 0;
    for (const d of recording.deliveries) {
      const key = `${d.partition}@${d.offset}`;
      if (seen.has(key)) twice++;
      seen.add(key);
    }
    return twice;
  }

  /** When the member reported it found the coordinator again (its kafkajs line), after `since`. */
  function foundAt(logger: CapturingLogger, since: number): number[] {
    return logger.lines
      .filter((line) => line.at > since && /Group coordinator found/.test(line.message))
      .map((line) => line.at);
  }

  function joinsAfter(logger: CapturingLogger, since: number): string[] {
    return logger.lines
      .filter((line) => line.at > since && /^Joined as /.test(line.message))
      .map((line) => line.message);
  }

  test('session longer than the election: the members find the new coordinator and stay in their generation; nothing lost or handled twice', async () => {
    const run = await killCoordinatorUnderLoad(30_000);
    // No rebalance: no member joined again, and the group has the same members.
    expect(joinsAfter(run.logger, run.killedAt)).toEqual([]);
    const ids = (group: { members: { memberId: string }[] }) => group.members.map((m) => m.memberId).sort();
    expect(ids(run.after)).toEqual(ids(run.before));
    // Each of the two members looked the coordinator up again, soon after the cluster elected it.
    const found = foundAt(run.logger, run.killedAt);
    expect(found.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...found) - run.elected.at).toBeLessThan(FOUND_AFTER_ELECTION_MS);
    expect(handledTwice()).toBe(0);
    expect(listenerWarnings.lines).toEqual([]);
  }, 300_000);
});
