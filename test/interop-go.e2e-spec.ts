/**
 * Interop with Go clients (README "Interoperability"): IBM/sarama and twmb/franz-go consumers (classic group
 * protocol, eager range / roundrobin) share a consumer group with Nest members, as leader and as follower, and
 * sarama and franz-go producers write records (headers, null keys, tombstones, a value that is not JSON) in batches
 * of every codec that a Nest group then handles. The Go side is test/support/go, built once per source version.
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
import {
  buildGoClient,
  type GoClientKind,
  goProduce,
  goRead,
  startGoMember,
} from './support/go/go-client.js';
import { startTestApp } from './support/nest-test-app.js';

const { AssignerProtocol } = kafkajs;

/** Go member ids start with these client ids; "zz-" sorts them after the Nest members ("e2e-app-..."). */
const CLIENT_IDS: Record<GoClientKind, string> = { franz: 'zz-interop-franz', sarama: 'zz-interop-sarama' };

interface Delivery {
  group: string;
  partition: number;
  offset: string;
  key: string | undefined;
  payload: unknown;
  headers: Record<string, string | string[]>;
}

const deliveries: Delivery[] = [];

@Controller()
class GoInteropController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: Record<string, unknown> | null, @Ctx() ctx: KafkaGroupContext) {
    deliveries.push({
      group: ctx.groupId,
      partition: ctx.partition,
      offset: ctx.offset,
      key: ctx.key,
      payload,
      headers: { ...ctx.headers },
    });
  }
}

function groupModule(groupId: string, topic: string, concurrency = 1) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, concurrency })],
    controllers: [GoInteropController],
  })
  class GoInteropGroupModule {}
  return GoInteropGroupModule;
}

const seqOf = (value: string | null) => (JSON.parse(value!) as { seq: number }).seq;

describe('Go clients (sarama, franz-go) with Nest members', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];
  const goClients: ForeignClient[] = [];
  let binary: string;

  beforeAll(async () => {
    binary = await buildGoClient();
  }, 660_000);

  afterEach(async () => {
    // Never leave a Go process behind: SIGTERM (it commits and leaves the group), SIGKILL after the timeout.
    await Promise.all(goClients.splice(0).map((client) => client.stop(15_000)));
    while (apps.length > 0) await apps.pop()!.close();
    deliveries.length = 0;
  });
  afterAll(async () => {
    await kafka.closeAll();
  });

  function startGo(
    client: GoClientKind,
    groupId: string,
    topic: string,
    strategies?: string[],
  ): ForeignClient {
    const member = startGoMember(binary, {
      client,
      brokers: testBrokers(),
      groupId,
      topic,
      clientId: CLIENT_IDS[client],
      strategies,
    });
    goClients.push(member);
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
   * Waits for the group Stable with `members` members and each Go member holding the assignment the coordinator
   * handed it; checks the protocol and that the assignments cover every partition once. Returns the protocol,
   * every member's partitions by member id and each Go member's partitions.
   */
  async function settledGroup(
    groupId: string,
    topic: string,
    partitions: number,
    members: number,
    goMembers: ForeignClient[],
  ) {
    const group = await kafka.waitForStableGroup(groupId, members, 60_000);
    expect(group.protocolType).toBe('consumer');
    expect(['range', 'roundrobin']).toContain(group.protocol);
    const assigned = new Map(
      group.members.map((m) => {
        const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
        return [m.memberId, decoded?.assignment[topic] ?? []] as const;
      }),
    );
    expect([...assigned.values()].flat().sort((a, b) => a - b)).toEqual(
      Array.from({ length: partitions }, (_, p) => p),
    );
    const goPartitions: number[][] = [];
    for (const go of goMembers) {
      const clientId = go.label.startsWith('sarama') ? CLIENT_IDS.sarama : CLIENT_IDS.franz;
      const member = group.members.find((m) => m.clientId === clientId);
      expect(member).toMatchObject({ clientId, memberId: expect.any(String) });
      const expected = [...assigned.get(member!.memberId)!].sort((a, b) => a - b);
      await go.waitUntil(
        `assignment ${JSON.stringify(expected)} as member ${member!.memberId}`,
        20_000,
        () => go.memberId === member!.memberId && JSON.stringify(go.assignment) === JSON.stringify(expected),
      );
      goPartitions.push(expected);
    }
    return { protocol: group.protocol, assigned, goPartitions };
  }

  /** Waits until each Nest member holds what the coordinator assigned it. */
  async function nestMembersHold(server: KafkaGroupsServer, topic: string, assigned: Map<string, number[]>) {
    await waitFor('every Nest member holds its assignment', 20_000, () =>
      server.groups[0].members.every(
        (m) => JSON.stringify(m.assignment[topic] ?? []) === JSON.stringify(assigned.get(m.memberId!)),
      ),
    );
  }

  /** Produces `count` messages; the Nest and Go members together process each exactly once and commit the end. */
  async function produceAndCheckOnce(
    groupId: string,
    topic: string,
    count: number,
    goMembers: ForeignClient[],
  ) {
    await kafka.produceKeyed(topic, count, (i) => `k${i % 13}`);
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const nestSeqs = () =>
      deliveries.filter((d) => d.group === groupId).map((d) => (d.payload as { seq: number }).seq);
    const goSeqs = () => goMembers.flatMap((go) => go.records.map((r) => seqOf(r.value)));
    // A Go member reports a record before it marks it; the line may still be in the pipe.
    await waitFor(`${count} messages processed`, 10_000, () => nestSeqs().length + goSeqs().length >= count);
    expect([...nestSeqs(), ...goSeqs()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: count }, (_, i) => i),
    );
    const offsets = await kafka.offsets(groupId, topic);
    expect(offsets.every((o) => o.committed === o.end)).toBe(true);
    for (const go of goMembers) expect(go.errors).toEqual([]);
    return { nest: nestSeqs().length, go: goMembers.map((go) => go.records.length) };
  }

  /** Stops a Go member the clean way (SIGTERM: commit, leave the group) and checks it left without errors. */
  async function stopCleanly(go: ForeignClient) {
    await go.stop(15_000);
    expect(go.exitReason).toBe('signal');
    expect(go.exitCode).toBe(0);
    expect(go.errors).toEqual([]);
  }

  test('sarama joins first and leads (range); a Nest member joins; 2 partitions split, 300 messages processed once', async () => {
    const topic = uniqueName('interop-sarama-leads');
    const groupId = uniqueName('interop-sarama-leads');
    await kafka.createTopic(topic, 2);

    const sarama = startGo('sarama', groupId, topic);
    await sarama.waitUntil(
      'first assignment (alone: both partitions)',
      60_000,
      () => JSON.stringify(sarama.assignment) === '[0,1]',
    );
    await kafka.waitForStableGroup(groupId, 1);
    const leaderRunsAlone = sarama.leaderRuns.length;
    expect(leaderRunsAlone).toBeGreaterThanOrEqual(1);

    const server = await startNest(groupId, topic);
    const { protocol, assigned, goPartitions } = await settledGroup(groupId, topic, 2, 2, [sarama]);
    // sarama stayed the leader and assigned the 2-member generation with the first protocol both sides know.
    await sarama.waitUntil('leader assignment for 2 members', 10_000, () =>
      sarama.leaderRuns.slice(leaderRunsAlone).some((r) => r.members === 2),
    );
    expect(protocol).toBe('range');
    expect(sarama.leaderRuns.at(-1)).toEqual({ protocol: 'range', members: 2 });
    // Members sorted by id ["e2e-app-…", "zz-interop-sarama-…"]: sarama's range gives it partition 1.
    expect(goPartitions).toEqual([[1]]);
    await nestMembersHold(server, topic, assigned);

    const counts = await produceAndCheckOnce(groupId, topic, 300, [sarama]);
    expect(counts.go[0]).toBeGreaterThan(0);
    expect(counts.nest).toBeGreaterThan(0);
    expect(new Set(sarama.records.map((r) => r.partition))).toEqual(new Set([1]));
    await stopCleanly(sarama);
    // The Nest member takes over at once (sarama left the group) and owns both partitions.
    await kafka.waitForStableGroup(groupId, 1, 30_000);
  });

  test('franz-go joins first and leads (roundrobin only); 2 Nest members join; 5 partitions dealt like Java, 300 messages once', async () => {
    const topic = uniqueName('interop-franz-leads');
    const groupId = uniqueName('interop-franz-leads');
    await kafka.createTopic(topic, 5);

    const franz = startGo('franz', groupId, topic, ['roundrobin']);
    await franz.waitUntil(
      'first assignment (alone: all 5 partitions)',
      60_000,
      () => JSON.stringify(franz.assignment) === '[0,1,2,3,4]',
    );
    await kafka.waitForStableGroup(groupId, 1);
    const leaderRunsAlone = franz.leaderRuns.length;
    expect(leaderRunsAlone).toBeGreaterThanOrEqual(1);

    const server = await startNest(groupId, topic, 2);
    const { protocol, assigned, goPartitions } = await settledGroup(groupId, topic, 5, 3, [franz]);
    await franz.waitUntil('leader assignment for 3 members', 10_000, () =>
      franz.leaderRuns.slice(leaderRunsAlone).some((r) => r.members === 3),
    );
    expect(protocol).toBe('roundrobin');
    expect(franz.leaderRuns.at(-1)).toEqual({ protocol: 'roundrobin', members: 3 });
    // Dealt 0..4 to the members sorted by id, as Java's RoundRobinAssignor and ours do: [0,3], [1,4], franz [2].
    const nestIds = server.groups[0].members.map((m) => m.memberId!).sort();
    expect(nestIds.map((id) => assigned.get(id))).toEqual([
      [0, 3],
      [1, 4],
    ]);
    expect(goPartitions).toEqual([[2]]);
    await nestMembersHold(server, topic, assigned);

    const counts = await produceAndCheckOnce(groupId, topic, 300, [franz]);
    expect(counts.go[0]).toBeGreaterThan(0);
    expect(new Set(franz.records.map((r) => r.partition))).toEqual(new Set([2]));
    await stopCleanly(franz);
  });

  test('a Nest member leads (roundrobin); sarama and franz-go follow; 4 members on 5 partitions, 300 messages once', async () => {
    const topic = uniqueName('interop-go-follow');
    const groupId = uniqueName('interop-go-follow');
    await kafka.createTopic(topic, 5);

    const server = await startNest(groupId, topic, 2);
    await kafka.waitForStableGroup(groupId, 2);
    const members = server.groups[0].members;
    await waitFor('both Nest members assigned', 20_000, () =>
      members.every((m) => (m.assignment[topic] ?? []).length > 0),
    );

    // franz-go advertises roundrobin only, sarama range first: the group must leave range for the one all share.
    const franz = startGo('franz', groupId, topic, ['roundrobin']);
    const sarama = startGo('sarama', groupId, topic);
    const { protocol, assigned, goPartitions } = await settledGroup(groupId, topic, 5, 4, [franz, sarama]);
    expect(protocol).toBe('roundrobin');
    // The Nest leader assigned every generation: no Go member ran an assignment.
    expect(franz.leaderRuns).toEqual([]);
    expect(sarama.leaderRuns).toEqual([]);
    // Sorted ids: e2e-app-… (2), zz-interop-franz-…, zz-interop-sarama-…; 0..4 dealt: [0,4], [1], [2], [3].
    const nestIds = members.map((m) => m.memberId!).sort();
    expect(nestIds.map((id) => assigned.get(id))).toEqual([[0, 4], [1]]);
    expect(goPartitions).toEqual([[2], [3]]);
    await nestMembersHold(server, topic, assigned);

    const counts = await produceAndCheckOnce(groupId, topic, 300, [franz, sarama]);
    expect(counts.go.every((n) => n > 0)).toBe(true);
    expect(new Set(franz.records.map((r) => r.partition))).toEqual(new Set([2]));
    expect(new Set(sarama.records.map((r) => r.partition))).toEqual(new Set([3]));
    await stopCleanly(franz);
    await stopCleanly(sarama);
  });

  test('franz-go with its default balancer (cooperative-sticky) holds the group: a Nest member is refused with the reason, and joins once franz-go left', async () => {
    const topic = uniqueName('interop-franz-coop');
    const groupId = uniqueName('interop-franz-coop');
    await kafka.createTopic(topic, 2);

    const franz = startGo('franz', groupId, topic, ['cooperative-sticky']);
    await franz.waitUntil(
      'first assignment (alone: both partitions)',
      60_000,
      () => JSON.stringify(franz.assignment) === '[0,1]',
    );
    expect(franz.leaderRuns.at(-1)).toEqual({ protocol: 'cooperative-sticky', members: 1 });
    const server = await startNest(groupId, topic, 1, {
      restartBackoff: { initialDelayMs: 200, maxDelayMs: 1_000 },
    });
    const member = server.groups[0].members[0];
    await waitFor('the Nest member refused, with the reason', 30_000, () =>
      member.lastError?.startsWith('Cannot join consumer group'),
    );
    expect(member.lastError).toContain(
      `Cannot join consumer group "${groupId}" with protocols range, roundrobin, RoundRobinAssigner: ` +
        `its members (${CLIENT_IDS.franz}) use assignment protocol "cooperative-sticky"`,
    );
    // franz-go kept the group and its partitions.
    const group = await kafka.waitForStableGroup(groupId, 1);
    expect(group.protocol).toBe('cooperative-sticky');
    expect(group.members.map((m) => m.clientId)).toEqual([CLIENT_IDS.franz]);

    await stopCleanly(franz);
    await waitFor('the Nest member joined', 30_000, () => member.state === 'joined');
    expect(member.lastError).toBeUndefined();
    await kafka.produceKeyed(topic, 50, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);
    expect(
      deliveries
        .filter((d) => d.group === groupId)
        .map((d) => (d.payload as { seq: number }).seq)
        .sort((a, b) => a - b),
    ).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  test('records from sarama and franz-go producers, in batches of every codec, reach the handler as documented', async () => {
    const topic = uniqueName('interop-go-produce');
    const groupId = uniqueName('interop-go-produce');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);

    const plan = new ForeignRecordPlan();
    await goProduce(binary, 'sarama', testBrokers(), topic, plan.add('sarama', 0));
    await goProduce(binary, 'franz', testBrokers(), topic, plan.add('franz', 1_000));
    plan.expectCodecs((await goRead(binary, testBrokers(), topic, plan.records.length)).records);

    await startNest(groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const counts = await plan.expectHandledAsDocumented(kafka, topic, deliveries);
    console.info(
      `[interop] Go producers: ${counts.json} JSON records, ${counts.tombstones} tombstones handled, ${counts.dead} dead-lettered, codecs ${CODECS.join('/')}`,
    );
  });
});
