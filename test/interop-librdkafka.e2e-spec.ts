/**
 * Interop with librdkafka (README "Interoperability"), through the confluent-kafka Python wheel that bundles it:
 * a librdkafka member (classic group protocol, partition.assignment.strategy range / roundrobin) shares a consumer
 * group with Nest members as leader and as follower; a member that advertises only cooperative-sticky cannot join
 * and the error says why; a librdkafka producer's records (headers, null keys, tombstones, every codec) reach the
 * handler as documented. The Python side is test/support/python, installed once into a cached virtual environment.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import type { ForeignClient } from './support/foreign-client.js';
import { CODECS, ForeignRecordPlan } from './support/foreign-records.js';
import { buildGoClient, goRead } from './support/go/go-client.js';
import { deliveries, InteropGroupFixture } from './support/interop-group.js';
import { prepareRdkafkaPython, rdkafkaProduce, startRdkafkaMember } from './support/python/rdkafka-client.js';

/** librdkafka member ids start with the client id; "zz-" sorts it after the Nest members ("e2e-app-..."). */
const RDKAFKA_CLIENT_ID = 'zz-interop-rdkafka';

describe('a librdkafka member and producer with Nest members', () => {
  const fixture = new InteropGroupFixture();
  const { kafka } = fixture;
  let python: string;

  beforeAll(async () => {
    python = await prepareRdkafkaPython();
  }, 660_000);

  afterEach(async () => {
    await fixture.cleanUp();
  });
  afterAll(async () => {
    await fixture.close();
  });

  function startRdkafka(groupId: string, topic: string, strategies: string[]): ForeignClient {
    const member = startRdkafkaMember(python, {
      brokers: testBrokers(),
      groupId,
      topic,
      clientId: RDKAFKA_CLIENT_ID,
      strategies,
    });
    return fixture.track(member, RDKAFKA_CLIENT_ID);
  }

  test('librdkafka joins first and leads (range, roundrobin); a Nest member joins; 2 partitions split, 300 messages once', async () => {
    const topic = uniqueName('interop-rdkafka-leads');
    const groupId = uniqueName('interop-rdkafka-leads');
    await kafka.createTopic(topic, 2);

    const rdkafka = startRdkafka(groupId, topic, ['range', 'roundrobin']);
    const leaderRunsAlone = await fixture.leadsAlone(rdkafka, groupId, 2, 'both partitions');

    const server = await fixture.startNest(groupId, topic);
    const {
      protocol,
      assigned,
      clientPartitions: [rdkafkaPartitions],
    } = await fixture.settledGroup(groupId, topic, 2, 2, [rdkafka]);
    await fixture.nestMembersHold(server, topic, assigned);
    await fixture.ledAgain(rdkafka, leaderRunsAlone, 2);
    expect(protocol).toBe('range');
    expect(rdkafka.leaderRuns.at(-1)).toEqual({ protocol: 'range', members: 2 });
    // Members sorted by id ["e2e-app-…", "zz-interop-rdkafka-…"]: librdkafka's range gives it partition 1.
    expect(rdkafkaPartitions).toEqual([1]);

    const counts = await fixture.produceAndCheckOnce(groupId, topic, 300, [rdkafka]);
    expect(counts.clients[0]).toBeGreaterThan(0);
    expect(counts.nest).toBeGreaterThan(0);
    expect(new Set(rdkafka.records.map((r) => r.partition))).toEqual(new Set([1]));
    await fixture.stopCleanly(rdkafka);
  });

  test('a Nest member leads; librdkafka (roundrobin only) follows; 5 partitions, 3 members dealt like Java, 300 messages once', async () => {
    const topic = uniqueName('interop-rdkafka-follows');
    const groupId = uniqueName('interop-rdkafka-follows');
    await kafka.createTopic(topic, 5);

    const server = await fixture.startNestLeading(groupId, topic, 2);
    const nestMembers = server.groups[0].members;

    const rdkafka = startRdkafka(groupId, topic, ['roundrobin']);
    const {
      protocol,
      assigned,
      clientPartitions: [rdkafkaPartitions],
    } = await fixture.settledGroup(groupId, topic, 5, 3, [rdkafka]);
    await fixture.nestMembersHold(server, topic, assigned);
    expect(protocol).toBe('roundrobin');
    expect(rdkafka.leaderRuns).toEqual([]);
    const nestIds = nestMembers.map((m) => m.memberId!).sort();
    expect(nestIds.map((id) => assigned.get(id))).toEqual([
      [0, 3],
      [1, 4],
    ]);
    expect(rdkafkaPartitions).toEqual([2]);

    const counts = await fixture.produceAndCheckOnce(groupId, topic, 300, [rdkafka]);
    expect(counts.clients[0]).toBeGreaterThan(0);
    expect(new Set(rdkafka.records.map((r) => r.partition))).toEqual(new Set([2]));
    await fixture.stopCleanly(rdkafka);
  });

  test('librdkafka advertising only cooperative-sticky: a Nest group refuses it; a Nest member refused by its group says why, and joins once it left', async () => {
    // A Nest group first: the broker refuses the librdkafka member's JoinGroup, and the Nest group goes on.
    const topicA = uniqueName('interop-coop-nest-first');
    const groupA = uniqueName('interop-coop-nest-first');
    await kafka.createTopic(topicA, 2);
    await fixture.startNest(groupA, topicA);
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
    const member = await fixture.startRefusedNest(groupB, topicB, RDKAFKA_CLIENT_ID);
    expect(['crashed', 'starting']).toContain(member.state);

    // The rolling deploy goes on: once the librdkafka member left, the Nest member joins by itself and consumes.
    await coop.stop(15_000);
    await kafka.waitForStableGroup(groupB, 1, 30_000);
    await waitFor('the Nest member joined', 20_000, () => member.state === 'joined');
    expect(member.lastError).toBeUndefined();
    await kafka.produceKeyed(topicB, 50, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupB, topicB, 30_000);
    expect(fixture.nestSeqs(groupB).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
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

    await fixture.startNest(groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const counts = await plan.expectHandledAsDocumented(kafka, topic, deliveries);
    console.info(
      `[interop] librdkafka producer: ${counts.json} JSON records, ${counts.tombstones} tombstones handled, ${counts.dead} dead-lettered, codecs ${CODECS.join('/')}`,
    );
  });
});
