/**
 * Interop with librdkafka (README "Interoperability"), through the confluent-kafka Python wheel that bundles it:
 * a librdkafka member (classic group protocol, partition.assignment.strategy range / roundrobin) shares a consumer
 * group with Nest members as leader and as follower; a member that advertises only cooperative-sticky cannot join
 * and the error says why; a librdkafka producer's records (headers, null keys, tombstones, every codec) reach the
 * handler as documented. The Python side is test/support/python, installed once into a cached virtual environment.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import kafkajs from 'kafkajs';
import {
  KafkaGroupContext,
  type KafkaGroupsServer,
  KafkaHandler,
  KafkaModule,
  type KafkaModuleOptions,
} from 'nest-kafka-groups';
import { KafkaTestClient, testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import type { ForeignClient } from './support/foreign-client.js';
import { CODECS, ForeignRecordPlan } from './support/foreign-records.js';
import { buildGoClient, goRead } from './support/go/go-client.js';
import { prepareRdkafkaPython, rdkafkaProduce, startRdkafkaMember } from './support/python/rdkafka-client.js';
import { startTestApp } from './support/nest-test-app.js';

const { AssignerProtocol } = kafkajs;

/** librdkafka member ids start with the client id; "zz-" sorts it after the Nest members ("e2e-app-..."). */
const RDKAFKA_CLIENT_ID = 'zz-interop-rdkafka';

interface Delivery {
  group: string;
  partition: number;
  key: string | undefined;
  payload: unknown;
  headers: Record<string, string | string[]>;
}

const deliveries: Delivery[] = [];

@Controller()
class RdkafkaInteropController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: Record<string, unknown> | null, @Ctx() ctx: KafkaGroupContext) {
    deliveries.push({
      group: ctx.groupId,
      partition: ctx.partition,
      key: ctx.key,
      payload,
      headers: { ...ctx.headers },
    });
  }
}

function groupModule(groupId: string, topic: string, concurrency = 1) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, concurrency })],
    controllers: [RdkafkaInteropController],
  })
  class RdkafkaInteropGroupModule {}
  return RdkafkaInteropGroupModule;
}

describe('a librdkafka member and producer with Nest members', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];
  const members: ForeignClient[] = [];
  let python: string;

  beforeAll(async () => {
    python = await prepareRdkafkaPython();
  }, 660_000);

  afterEach(async () => {
    await Promise.all(members.splice(0).map((member) => member.stop(15_000)));
    while (apps.length > 0) await apps.pop()!.close();
    deliveries.length = 0;
  });
  afterAll(async () => {
    await kafka.closeAll();
  });

  function startRdkafka(groupId: string, topic: string, strategies: string[]): ForeignClient {
    const member = startRdkafkaMember(python, {
      brokers: testBrokers(),
      groupId,
      topic,
      clientId: RDKAFKA_CLIENT_ID,
      strategies,
    });
    members.push(member);
    return member;
  }

  async function startNest(
    groupId: string,
    topic: string,
    concurrency = 1,
    root: Partial<KafkaModuleOptions> = {},
  ): Promise<KafkaGroupsServer> {
    const { app, server } = await startTestApp([groupModule(groupId, topic, concurrency)], root);
    apps.push(app);
    return server;
  }

  /**
   * Waits for the group Stable with `count` members, the librdkafka member holding what the coordinator handed it
   * and every Nest member too; checks that the assignments cover every partition once.
   */
  async function settledGroup(
    groupId: string,
    topic: string,
    partitions: number,
    count: number,
    rdkafka: ForeignClient,
    server: KafkaGroupsServer,
  ) {
    const group = await kafka.waitForStableGroup(groupId, count, 60_000);
    expect(group.protocolType).toBe('consumer');
    const assigned = new Map(
      group.members.map((m) => {
        const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
        return [m.memberId, decoded?.assignment[topic] ?? []] as const;
      }),
    );
    expect([...assigned.values()].flat().sort((a, b) => a - b)).toEqual(
      Array.from({ length: partitions }, (_, p) => p),
    );
    const member = group.members.find((m) => m.clientId === RDKAFKA_CLIENT_ID);
    expect(member).toMatchObject({ clientId: RDKAFKA_CLIENT_ID, memberId: expect.any(String) });
    const rdkafkaPartitions = [...assigned.get(member!.memberId)!].sort((a, b) => a - b);
    await rdkafka.waitUntil(
      `assignment ${JSON.stringify(rdkafkaPartitions)} as member ${member!.memberId}`,
      20_000,
      () =>
        rdkafka.memberId === member!.memberId &&
        JSON.stringify(rdkafka.assignment) === JSON.stringify(rdkafkaPartitions),
    );
    await waitFor('every Nest member holds its assignment', 20_000, () =>
      server.groups[0].members.every(
        (m) => JSON.stringify(m.assignment[topic] ?? []) === JSON.stringify(assigned.get(m.memberId!)),
      ),
    );
    return { protocol: group.protocol, assigned, rdkafkaPartitions };
  }

  /** Produces `count` messages; Nest and librdkafka together process each exactly once and commit the end. */
  async function produceAndCheckOnce(groupId: string, topic: string, count: number, rdkafka: ForeignClient) {
    await kafka.produceKeyed(topic, count, (i) => `k${i % 13}`);
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const nestSeqs = () =>
      deliveries.filter((d) => d.group === groupId).map((d) => (d.payload as { seq: number }).seq);
    const rdkafkaSeqs = () => rdkafka.records.map((r) => (JSON.parse(r.value!) as { seq: number }).seq);
    // librdkafka reports a record before it stores its offset; the line may still be in the pipe.
    await waitFor(
      `${count} messages processed`,
      10_000,
      () => nestSeqs().length + rdkafkaSeqs().length >= count,
    );
    expect([...nestSeqs(), ...rdkafkaSeqs()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: count }, (_, i) => i),
    );
    const offsets = await kafka.offsets(groupId, topic);
    expect(offsets.every((o) => o.committed === o.end)).toBe(true);
    expect(rdkafka.errors).toEqual([]);
    return { nest: nestSeqs().length, rdkafka: rdkafkaSeqs().length };
  }

  async function stopCleanly(rdkafka: ForeignClient) {
    await rdkafka.stop(15_000);
    expect(rdkafka.exitReason).toBe('signal');
    expect(rdkafka.exitCode).toBe(0);
    expect(rdkafka.errors).toEqual([]);
  }

  test('librdkafka joins first and leads (range, roundrobin); a Nest member joins; 2 partitions split, 300 messages once', async () => {
    const topic = uniqueName('interop-rdkafka-leads');
    const groupId = uniqueName('interop-rdkafka-leads');
    await kafka.createTopic(topic, 2);

    const rdkafka = startRdkafka(groupId, topic, ['range', 'roundrobin']);
    await rdkafka.waitUntil(
      'first assignment (alone: both partitions)',
      60_000,
      () => JSON.stringify(rdkafka.assignment) === '[0,1]',
    );
    await kafka.waitForStableGroup(groupId, 1);
    const leaderRunsAlone = rdkafka.leaderRuns.length;
    expect(leaderRunsAlone).toBeGreaterThanOrEqual(1);

    const server = await startNest(groupId, topic);
    const { protocol, rdkafkaPartitions } = await settledGroup(groupId, topic, 2, 2, rdkafka, server);
    await rdkafka.waitUntil('leader assignment for 2 members', 10_000, () =>
      rdkafka.leaderRuns.slice(leaderRunsAlone).some((r) => r.members === 2),
    );
    expect(protocol).toBe('range');
    expect(rdkafka.leaderRuns.at(-1)).toEqual({ protocol: 'range', members: 2 });
    // Members sorted by id ["e2e-app-…", "zz-interop-rdkafka-…"]: librdkafka's range gives it partition 1.
    expect(rdkafkaPartitions).toEqual([1]);

    const counts = await produceAndCheckOnce(groupId, topic, 300, rdkafka);
    expect(counts.rdkafka).toBeGreaterThan(0);
    expect(counts.nest).toBeGreaterThan(0);
    expect(new Set(rdkafka.records.map((r) => r.partition))).toEqual(new Set([1]));
    await stopCleanly(rdkafka);
  });

  test('a Nest member leads; librdkafka (roundrobin only) follows; 5 partitions, 3 members dealt like Java, 300 messages once', async () => {
    const topic = uniqueName('interop-rdkafka-follows');
    const groupId = uniqueName('interop-rdkafka-follows');
    await kafka.createTopic(topic, 5);

    const server = await startNest(groupId, topic, 2);
    await kafka.waitForStableGroup(groupId, 2);
    const nestMembers = server.groups[0].members;
    await waitFor('both Nest members assigned', 20_000, () =>
      nestMembers.every((m) => (m.assignment[topic] ?? []).length > 0),
    );

    const rdkafka = startRdkafka(groupId, topic, ['roundrobin']);
    const { protocol, assigned, rdkafkaPartitions } = await settledGroup(
      groupId,
      topic,
      5,
      3,
      rdkafka,
      server,
    );
    expect(protocol).toBe('roundrobin');
    expect(rdkafka.leaderRuns).toEqual([]);
    const nestIds = nestMembers.map((m) => m.memberId!).sort();
    expect(nestIds.map((id) => assigned.get(id))).toEqual([
      [0, 3],
      [1, 4],
    ]);
    expect(rdkafkaPartitions).toEqual([2]);

    const counts = await produceAndCheckOnce(groupId, topic, 300, rdkafka);
    expect(counts.rdkafka).toBeGreaterThan(0);
    expect(new Set(rdkafka.records.map((r) => r.partition))).toEqual(new Set([2]));
    await stopCleanly(rdkafka);
  });

  test('librdkafka advertising only cooperative-sticky: a Nest group refuses it; a Nest member refused by its group says why, and joins once it left', async () => {
    // A Nest group first: the broker refuses the librdkafka member's JoinGroup, and the Nest group goes on.
    const topicA = uniqueName('interop-coop-nest-first');
    const groupA = uniqueName('interop-coop-nest-first');
    await kafka.createTopic(topicA, 2);
    await startNest(groupA, topicA);
    await kafka.waitForStableGroup(groupA, 1);
    const refused = startRdkafka(groupA, topicA, ['cooperative-sticky']);
    await refused.waitUntil('JoinGroup refused', 30_000, () =>
      refused.errors.some((e) => e.includes('INCONSISTENT_GROUP_PROTOCOL')),
    );
    await kafka.produceKeyed(topicA, 50, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupA, topicA, 30_000);
    const groupAfter = await kafka.waitForStableGroup(groupA, 1);
    expect(groupAfter.protocol).toBe('range');
    expect(groupAfter.members.map((m) => m.clientId)).not.toContain(RDKAFKA_CLIENT_ID);
    expect(refused.assignments).toEqual([]);
    expect(refused.records).toEqual([]);
    expect(deliveries.filter((d) => d.group === groupA)).toHaveLength(50);
    await refused.stop(15_000);

    // A librdkafka group first: the Nest member cannot join; its error names the group, both sides' protocols
    // and the member in the way (the broker's error names none of them).
    const topicB = uniqueName('interop-coop-rdkafka-first');
    const groupB = uniqueName('interop-coop-rdkafka-first');
    await kafka.createTopic(topicB, 2);
    const coop = startRdkafka(groupB, topicB, ['cooperative-sticky']);
    await coop.waitUntil(
      'assigned both partitions',
      60_000,
      () => JSON.stringify(coop.assignment) === '[0,1]',
    );
    expect(coop.leaderRuns.at(-1)).toEqual({ protocol: 'cooperative-sticky', members: 1 });
    const server = await startNest(groupB, topicB, 1, {
      restartBackoff: { initialDelayMs: 200, maxDelayMs: 1_000 },
    });
    const member = server.groups[0].members[0];
    await waitFor('the Nest member refused, with the reason', 30_000, () =>
      member.lastError?.startsWith('Cannot join consumer group'),
    );
    expect(member.lastError).toContain(
      `Cannot join consumer group "${groupB}" with protocols range, roundrobin, RoundRobinAssigner: ` +
        `its members (${RDKAFKA_CLIENT_ID}) use assignment protocol "cooperative-sticky"`,
    );
    expect(['crashed', 'starting']).toContain(member.state);

    // The rolling deploy goes on: once the librdkafka member left, the Nest member joins by itself and consumes.
    await coop.stop(15_000);
    await kafka.waitForStableGroup(groupB, 1, 30_000);
    await waitFor('the Nest member joined', 20_000, () => member.state === 'joined');
    expect(member.lastError).toBeUndefined();
    await kafka.produceKeyed(topicB, 50, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupB, topicB, 30_000);
    expect(
      deliveries
        .filter((d) => d.group === groupB)
        .map((d) => (d.payload as { seq: number }).seq)
        .sort((a, b) => a - b),
    ).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  test('records from a librdkafka producer, in batches of every codec, reach the handler as documented', async () => {
    const topic = uniqueName('interop-rdkafka-produce');
    const groupId = uniqueName('interop-rdkafka-produce');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);

    const plan = new ForeignRecordPlan();
    await rdkafkaProduce(python, testBrokers(), topic, plan.add('librdkafka', 0));
    // franz-go reads back the codec of each record's batch: the proof that librdkafka compressed them.
    plan.expectCodecs(
      (await goRead(await buildGoClient(), testBrokers(), topic, plan.records.length)).records,
    );

    await startNest(groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const counts = await plan.expectHandledAsDocumented(kafka, topic, deliveries);
    console.info(
      `[interop] librdkafka producer: ${counts.json} JSON records, ${counts.tombstones} tombstones handled, ${counts.dead} dead-lettered, codecs ${CODECS.join('/')}`,
    );
  });
});
