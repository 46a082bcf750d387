/**
 * Interop with other Kafka clients (DESIGN.md): a plain Java consumer (kafka-clients, classic group protocol,
 * [range, roundrobin]) shares a consumer group with Nest members. Whichever side leads, the group settles on a
 * protocol both know, every member (Java included) gets a valid assignment, and every message is processed once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { KafkaGroupsServer } from 'nest-kafka-groups';
import { testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { InteropGroupFixture } from './support/interop-group.js';
import {
  compileInteropConsumer,
  JavaConsumer,
  removeCompiledConsumer,
} from './support/java/java-consumer.js';

/** Java member ids start with the client id; "zz-" sorts them after the Nest members ("e2e-app-..."). */
const JAVA_CLIENT_ID = 'zz-interop-java';

describe('a Java consumer in the same group as Nest members', () => {
  const fixture = new InteropGroupFixture();
  const { kafka } = fixture;
  /** Compiled once: a single-file source launch compiles at every start, 3-5 s per JVM on 2 busy cores. */
  let classDir: string | undefined;

  beforeAll(async () => {
    classDir = await compileInteropConsumer();
  });

  afterEach(async () => {
    await fixture.cleanUp();
  });
  afterAll(async () => {
    await fixture.close();
    await removeCompiledConsumer(classDir);
  });

  function startJava(
    groupId: string,
    topic: string,
    more: { strategies?: ('range' | 'roundrobin')[]; extraTopics?: string[]; groupInstanceId?: string } = {},
  ): JavaConsumer {
    const java = new JavaConsumer({
      brokers: testBrokers(),
      groupId,
      topic,
      clientId: JAVA_CLIENT_ID,
      maxRuntimeMs: 110_000,
      classDir,
      ...more,
    });
    return fixture.track(java, JAVA_CLIENT_ID);
  }

  /** The fixture's settledGroup with the one Java member: its partitions as `javaPartitions`. */
  async function settledGroup(
    groupId: string,
    topic: string,
    partitions: number,
    members: number,
    java: JavaConsumer,
  ) {
    const {
      protocol,
      assigned,
      clientPartitions: [javaPartitions],
    } = await fixture.settledGroup(groupId, topic, partitions, members, [java]);
    return { protocol, assigned, javaPartitions };
  }

  /** The fixture's produceAndCheckOnce with the one Java member: its count as `java`. */
  async function produceAndCheckOnce(groupId: string, topic: string, count: number, java: JavaConsumer) {
    const {
      nest,
      clients: [javaCount],
    } = await fixture.produceAndCheckOnce(groupId, topic, count, [java]);
    return { nest, java: javaCount };
  }

  /**
   * Once the group settled: the Nest member holds what the assignment gave it, and 300 messages are processed once
   * across Java and Nest, each on its own partitions; then Java leaves cleanly.
   */
  async function expectSharedWork(
    label: string,
    groupId: string,
    topic: string,
    java: JavaConsumer,
    server: KafkaGroupsServer,
    { protocol, assigned, javaPartitions }: Awaited<ReturnType<typeof settledGroup>>,
  ) {
    const nestMember = server.groups[0].members[0];
    await waitFor(
      'the Nest member holds the other partition',
      10_000,
      () =>
        JSON.stringify(nestMember.assignment[topic] ?? []) ===
        JSON.stringify(assigned.get(nestMember.memberId!)),
    );
    const counts = await produceAndCheckOnce(groupId, topic, 300, java);
    expect(counts.java).toBeGreaterThan(0);
    expect(counts.nest).toBeGreaterThan(0);
    expect(new Set(java.records.map((r) => r.partition))).toEqual(new Set(javaPartitions));
    console.info(
      `[interop] ${label}: protocol ${protocol}, Java ${counts.java} / Nest ${counts.nest}, JVM start ${java.startupMs} ms`,
    );
    await fixture.stopCleanly(java);
  }

  test('Java joins first and leads; a Nest member joins; 2 partitions split, 300 messages processed once', async () => {
    const topic = uniqueName('interop-java-leads');
    const groupId = uniqueName('interop-java-leads');
    await kafka.createTopic(topic, 2);

    const java = startJava(groupId, topic);
    const leaderRunsAlone = await fixture.leadsAlone(java, groupId, 2, 'both partitions');

    const server = await fixture.startNest(groupId, topic);
    const settled = await settledGroup(groupId, topic, 2, 2, java);
    const { protocol, javaPartitions } = settled;
    // Java stayed the leader and assigned the 2-member generation with one of the shared protocols.
    await fixture.ledAgain(java, leaderRunsAlone, 2);
    expect(java.leaderRuns.at(-1)).toEqual({ protocol, members: 2 });
    // range (and roundrobin) over members sorted by id ["e2e-app-…", "zz-interop-java-…"]: Java gets partition 1.
    expect(javaPartitions).toEqual([1]);
    await expectSharedWork('Java leader', groupId, topic, java, server, settled);
  });

  test('Nest joins first and leads; Java joins; 2 partitions split, 300 messages processed once', async () => {
    const topic = uniqueName('interop-nest-leads');
    const groupId = uniqueName('interop-nest-leads');
    await kafka.createTopic(topic, 2);

    const server = await fixture.startNest(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const nestMember = server.groups[0].members[0];
    await waitFor(
      'the Nest member alone holds both partitions',
      20_000,
      () => (nestMember.assignment[topic] ?? []).length === 2,
    );

    const java = startJava(groupId, topic);
    const settled = await settledGroup(groupId, topic, 2, 2, java);
    // The Nest member led: Java never ran an assignment, it decoded the one our assigner encoded.
    expect(java.leaderRuns).toEqual([]);
    // Our assigner agrees with Java's: members sorted by id, the Nest member first, so Java gets partition 1.
    expect(settled.javaPartitions).toEqual([1]);
    await expectSharedWork('Nest leader', groupId, topic, java, server, settled);
  });

  test('an idle Java member (3 members, 2 partitions) gets an empty assignment and the group still finishes', async () => {
    const topic = uniqueName('interop-idle-java');
    const groupId = uniqueName('interop-idle-java');
    await kafka.createTopic(topic, 2);

    const server = await fixture.startNest(groupId, topic, 2);
    await kafka.waitForStableGroup(groupId, 2);
    const members = server.groups[0].members;
    await waitFor('both Nest members assigned', 20_000, () =>
      members.every((m) => (m.assignment[topic] ?? []).length === 1),
    );

    // Its member id sorts last, so both range and roundrobin leave it without a partition.
    const java = startJava(groupId, topic);
    const { protocol, javaPartitions } = await settledGroup(groupId, topic, 2, 3, java);
    expect(javaPartitions).toEqual([]);
    expect(java.assignment).toEqual([]);
    expect(java.leaderRuns).toEqual([]);
    await waitFor(
      'each Nest member still holds one partition',
      10_000,
      () =>
        members
          .map((m) => m.assignment[topic] ?? [])
          .flat()
          .sort()
          .join() === '0,1',
    );

    const counts = await produceAndCheckOnce(groupId, topic, 200, java);
    expect(counts.java).toBe(0);
    expect(counts.nest).toBe(200);
    // Still a member of the Stable group, idle but healthy.
    const group = await kafka.waitForStableGroup(groupId, 3);
    expect(group.members.some((m) => m.clientId === JAVA_CLIENT_ID)).toBe(true);
    console.info(
      `[interop] idle Java: protocol ${protocol}, Nest ${counts.nest}, JVM start ${java.startupMs} ms`,
    );
    await fixture.stopCleanly(java);
  });

  test('Java advertising only roundrobin: the group picks roundrobin and our assigner deals like Java (5 partitions, 3 members)', async () => {
    const topic = uniqueName('interop-roundrobin');
    const groupId = uniqueName('interop-roundrobin');
    await kafka.createTopic(topic, 5);

    const server = await fixture.startNestLeading(groupId, topic, 2);
    const members = server.groups[0].members;

    const java = startJava(groupId, topic, { strategies: ['roundrobin'] });
    const { protocol, assigned, javaPartitions } = await settledGroup(groupId, topic, 5, 3, java);
    expect(protocol).toBe('roundrobin');
    expect(java.leaderRuns).toEqual([]);
    // Java's RoundRobinAssignor deals partitions 0..4 to the members sorted by id: [0,3], [1,4], then Java [2]
    // (range would have given [0,1], [2,3], [4]).
    const nestIds = members.map((m) => m.memberId!).sort();
    expect(nestIds.map((id) => assigned.get(id))).toEqual([
      [0, 3],
      [1, 4],
    ]);
    expect(javaPartitions).toEqual([2]);

    const counts = await produceAndCheckOnce(groupId, topic, 300, java);
    expect(counts.java).toBeGreaterThan(0);
    expect(new Set(java.records.map((r) => r.partition))).toEqual(new Set([2]));
    console.info(
      `[interop] roundrobin-only Java: protocol ${protocol}, Java ${counts.java} / Nest ${counts.nest}, JVM start ${java.startupMs} ms`,
    );
    await fixture.stopCleanly(java);
  });

  test('Java also subscribes to a topic that does not exist: the Nest leader assigns the rest, like Java skipping it', async () => {
    const topic = uniqueName('interop-missing');
    const missing = uniqueName('interop-missing-never-created');
    const groupId = uniqueName('interop-missing');
    await kafka.createTopic(topic, 2);

    const server = await fixture.startNest(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const nestMember = server.groups[0].members[0];
    await waitFor(
      'the Nest member alone holds both partitions',
      20_000,
      () => (nestMember.assignment[topic] ?? []).length === 2,
    );

    const java = startJava(groupId, topic, { extraTopics: [missing] });
    const { protocol, javaPartitions } = await settledGroup(groupId, topic, 2, 2, java);
    expect(java.leaderRuns).toEqual([]);
    expect(javaPartitions).toEqual([1]);
    await waitFor(
      'the Nest member holds partition 0',
      10_000,
      () => JSON.stringify(nestMember.assignment[topic] ?? []) === '[0]',
    );
    expect(['joined', 'rebalancing']).toContain(nestMember.state);

    const counts = await produceAndCheckOnce(groupId, topic, 300, java);
    expect(counts.java).toBeGreaterThan(0);
    console.info(
      `[interop] Java with a missing topic: protocol ${protocol}, Java ${counts.java} / Nest ${counts.nest}, JVM start ${java.startupMs} ms`,
    );
    await fixture.stopCleanly(java);
  });

  test('a topic only a Java member read is deleted after it left: the Nest leader rejoins and goes on (issue 9, finding 4)', async () => {
    const topic = uniqueName('interop-deleted');
    const extra = uniqueName('interop-deleted-extra');
    const groupId = uniqueName('interop-deleted');
    await kafka.createTopic(topic, 2);
    await kafka.createTopic(extra, 1);

    const server = await fixture.startNest(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const nestMember = server.groups[0].members[0];
    const java = startJava(groupId, topic, { extraTopics: [extra] });
    await settledGroup(groupId, topic, 2, 2, java);
    expect(java.leaderRuns).toEqual([]);

    // The Java member leaves, the Nest member deals alone, then the Java member's extra topic is deleted.
    await fixture.stopCleanly(java);
    await waitFor(
      'the Nest member alone holds both partitions again',
      30_000,
      () => nestMember.state === 'joined' && (nestMember.assignment[topic] ?? []).length === 2,
    );
    const admin = await kafka.admin();
    await admin.deleteTopics({ topics: [extra], timeout: 10_000 });
    // A rebalance after the deletion (a second Nest member joins) must complete with the Nest leader, whose
    // metadata requests kept asking for the deleted topic before the fix.
    const memberId = nestMember.memberId;
    const second = await fixture.startNest(groupId, topic);
    await kafka.waitForStableGroup(groupId, 2, 8_000);
    // The same consumer rejoined: not one recreated after its metadata requests failed for good.
    expect(nestMember.memberId).toBe(memberId);
    await kafka.produceKeyed(topic, 50, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);
    expect(nestMember.lastError).toBeUndefined();
    expect(second.groups[0].members[0].state).toBe('joined');
    expect(new Set(fixture.nestSeqs(groupId)).size).toBe(50);
  });

  test('a static Java member (group.instance.id) is dealt first by the Nest leader, as Java orders members', async () => {
    const topic = uniqueName('interop-static');
    const groupId = uniqueName('interop-static');
    await kafka.createTopic(topic, 2);

    const server = await fixture.startNest(groupId, topic);
    await kafka.waitForStableGroup(groupId, 1);
    const nestMember = server.groups[0].members[0];
    await waitFor(
      'the Nest member alone holds both partitions',
      20_000,
      () => (nestMember.assignment[topic] ?? []).length === 2,
    );

    const java = startJava(groupId, topic, { groupInstanceId: uniqueName('zz-static-java') });
    const { protocol, javaPartitions } = await settledGroup(groupId, topic, 2, 2, java);
    expect(java.leaderRuns).toEqual([]);
    // By member id Java ("zz-…") would come last and get partition 1; static members come first in Java's order.
    expect(javaPartitions).toEqual([0]);

    const counts = await produceAndCheckOnce(groupId, topic, 100, java);
    expect(counts.java).toBeGreaterThan(0);
    console.info(
      `[interop] static Java: protocol ${protocol}, Java ${counts.java} / Nest ${counts.nest}, JVM start ${java.startupMs} ms`,
    );
    await fixture.stopCleanly(java);
  });
});
