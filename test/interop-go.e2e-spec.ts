/**
 * Interop with Go clients (README "Interoperability"): IBM/sarama and twmb/franz-go consumers (classic group
 * protocol, eager range / roundrobin) share a consumer group with Nest members, as leader and as follower, and
 * sarama and franz-go producers write records (headers, null keys, tombstones, a value that is not JSON) in batches
 * of every codec that a Nest group then handles. The Go side is test/support/go, built once per source version.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import type { ForeignClient } from './support/foreign-client.js';
import { CODECS, ForeignRecordPlan } from './support/foreign-records.js';
import {
  buildGoClient,
  type GoClientKind,
  goProduce,
  goRead,
  startGoMember,
} from './support/go/go-client.js';
import { deliveries, InteropGroupFixture } from './support/interop-group.js';

/** Go member ids start with these client ids; "zz-" sorts them after the Nest members ("e2e-app-..."). */
const CLIENT_IDS: Record<GoClientKind, string> = { franz: 'zz-interop-franz', sarama: 'zz-interop-sarama' };

describe('Go clients (sarama, franz-go) with Nest members', () => {
  const fixture = new InteropGroupFixture();
  const { kafka } = fixture;
  let binary: string;

  beforeAll(async () => {
    binary = await buildGoClient();
  }, 660_000);

  afterEach(async () => {
    await fixture.cleanUp();
  });
  afterAll(async () => {
    await fixture.close();
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
    return fixture.track(member, CLIENT_IDS[client]);
  }

  test('sarama joins first and leads (range); a Nest member joins; 2 partitions split, 300 messages processed once', async () => {
    const topic = uniqueName('interop-sarama-leads');
    const groupId = uniqueName('interop-sarama-leads');
    await kafka.createTopic(topic, 2);

    const sarama = startGo('sarama', groupId, topic);
    const leaderRunsAlone = await fixture.leadsAlone(sarama, groupId, 2, 'both partitions');

    const server = await fixture.startNest(groupId, topic);
    const {
      protocol,
      assigned,
      clientPartitions: goPartitions,
    } = await fixture.settledGroup(groupId, topic, 2, 2, [sarama]);
    // sarama stayed the leader and assigned the 2-member generation with the first protocol both sides know.
    await fixture.ledAgain(sarama, leaderRunsAlone, 2);
    expect(protocol).toBe('range');
    expect(sarama.leaderRuns.at(-1)).toEqual({ protocol: 'range', members: 2 });
    // Members sorted by id ["e2e-app-…", "zz-interop-sarama-…"]: sarama's range gives it partition 1.
    expect(goPartitions).toEqual([[1]]);
    await fixture.nestMembersHold(server, topic, assigned);

    const counts = await fixture.produceAndCheckOnce(groupId, topic, 300, [sarama]);
    expect(counts.clients[0]).toBeGreaterThan(0);
    expect(counts.nest).toBeGreaterThan(0);
    expect(new Set(sarama.records.map((r) => r.partition))).toEqual(new Set([1]));
    await fixture.stopCleanly(sarama);
    // The Nest member takes over at once (sarama left the group) and owns both partitions.
    await kafka.waitForStableGroup(groupId, 1, 30_000);
  });

  test('franz-go joins first and leads (roundrobin only); 2 Nest members join; 5 partitions dealt like Java, 300 messages once', async () => {
    const topic = uniqueName('interop-franz-leads');
    const groupId = uniqueName('interop-franz-leads');
    await kafka.createTopic(topic, 5);

    const franz = startGo('franz', groupId, topic, ['roundrobin']);
    const leaderRunsAlone = await fixture.leadsAlone(franz, groupId, 5, 'all 5 partitions');

    const server = await fixture.startNest(groupId, topic, 2);
    const {
      protocol,
      assigned,
      clientPartitions: goPartitions,
    } = await fixture.settledGroup(groupId, topic, 5, 3, [franz]);
    await fixture.ledAgain(franz, leaderRunsAlone, 3);
    expect(protocol).toBe('roundrobin');
    expect(franz.leaderRuns.at(-1)).toEqual({ protocol: 'roundrobin', members: 3 });
    // Dealt 0..4 to the members sorted by id, as Java's RoundRobinAssignor and ours do: [0,3], [1,4], franz [2].
    const nestIds = server.groups[0].members.map((m) => m.memberId!).sort();
    expect(nestIds.map((id) => assigned.get(id))).toEqual([
      [0, 3],
      [1, 4],
    ]);
    expect(goPartitions).toEqual([[2]]);
    await fixture.nestMembersHold(server, topic, assigned);

    const counts = await fixture.produceAndCheckOnce(groupId, topic, 300, [franz]);
    expect(counts.clients[0]).toBeGreaterThan(0);
    expect(new Set(franz.records.map((r) => r.partition))).toEqual(new Set([2]));
    await fixture.stopCleanly(franz);
  });

  test('a Nest member leads (roundrobin); sarama and franz-go follow; 4 members on 5 partitions, 300 messages once', async () => {
    const topic = uniqueName('interop-go-follow');
    const groupId = uniqueName('interop-go-follow');
    await kafka.createTopic(topic, 5);

    const server = await fixture.startNestLeading(groupId, topic, 2);
    const members = server.groups[0].members;

    // franz-go advertises roundrobin only, sarama range first: the group must leave range for the one all share.
    const franz = startGo('franz', groupId, topic, ['roundrobin']);
    const sarama = startGo('sarama', groupId, topic);
    const {
      protocol,
      assigned,
      clientPartitions: goPartitions,
    } = await fixture.settledGroup(groupId, topic, 5, 4, [franz, sarama]);
    expect(protocol).toBe('roundrobin');
    // The Nest leader assigned every generation: no Go member ran an assignment.
    expect(franz.leaderRuns).toEqual([]);
    expect(sarama.leaderRuns).toEqual([]);
    // Sorted ids: e2e-app-… (2), zz-interop-franz-…, zz-interop-sarama-…; 0..4 dealt: [0,4], [1], [2], [3].
    const nestIds = members.map((m) => m.memberId!).sort();
    expect(nestIds.map((id) => assigned.get(id))).toEqual([[0, 4], [1]]);
    expect(goPartitions).toEqual([[2], [3]]);
    await fixture.nestMembersHold(server, topic, assigned);

    const counts = await fixture.produceAndCheckOnce(groupId, topic, 300, [franz, sarama]);
    expect(counts.clients.every((n) => n > 0)).toBe(true);
    expect(new Set(franz.records.map((r) => r.partition))).toEqual(new Set([2]));
    expect(new Set(sarama.records.map((r) => r.partition))).toEqual(new Set([3]));
    await fixture.stopCleanly(franz);
    await fixture.stopCleanly(sarama);
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
    const member = await fixture.startRefusedNest(groupId, topic, CLIENT_IDS.franz);
    // franz-go kept the group and its partitions.
    const group = await kafka.waitForStableGroup(groupId, 1);
    expect(group.protocol).toBe('cooperative-sticky');
    expect(group.members.map((m) => m.clientId)).toEqual([CLIENT_IDS.franz]);

    await fixture.stopCleanly(franz);
    await waitFor('the Nest member joined', 30_000, () => member.state === 'joined');
    expect(member.lastError).toBeUndefined();
    await kafka.produceKeyed(topic, 50, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);
    expect(fixture.nestSeqs(groupId).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
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

    await fixture.startNest(groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const counts = await plan.expectHandledAsDocumented(kafka, topic, deliveries);
    console.info(
      `[interop] Go producers: ${counts.json} JSON records, ${counts.tombstones} tombstones handled, ${counts.dead} dead-lettered, codecs ${CODECS.join('/')}`,
    );
  });
});
