/**
 * The first join on a broker that has just started (RELIABILITY.md finding 13): the first FindCoordinator creates
 * `__consumer_offsets`, and the broker answers the JoinGroup that follows "the coordinator is loading" until it has
 * loaded the partition. kafkajs gave up on that answer: the consumer crashed (kafkajs's ERROR lines, the member's
 * "crashed, kafkajs restarts it" warning) and joined again as a new member. The Java consumer backs off and sends
 * the JoinGroup again; so does the library's kafkajs (the consumers here are its own instance, with its fixes).
 *
 * Needs a broker no group has used yet: the spec starts its own on KAFKA_FRESH_PORT (19892, controller 19893) and
 * stops it, or uses one that answers there and holds no `__consumer_offsets` (left running).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { isBrokerReachable, startBroker, stopBroker } from '../scripts/kafka-local-lib.mjs';
import { expectPortsFree, javaAvailable } from './support/local-machine.js';
import { ownBrokerSettings } from './support/own-broker.js';

/** Consumers of as many groups joining at once: all of them reached the loading coordinator before the fix. */
const GROUPS = 8;

const suite = javaAvailable() ? describe : describe.skip;

suite('first join on a fresh broker (coordinator loading)', () => {
  const { port, settings } = ownBrokerSettings('KAFKA_FRESH_PORT', 19892);
  let started = false;
  let kafka: KafkaTestClient;

  beforeAll(async () => {
    kafka = new KafkaTestClient({ brokers: [settings.localAddress], clientId: 'coordinator-loading-spec' });
    if (await isBrokerReachable(settings.localAddress)) {
      // One started beforehand (`npm run kafka:start` on that port) is used only while no group has used it.
      const topics = await (await kafka.admin()).listTopics();
      if (topics.includes('__consumer_offsets'))
        throw new Error(
          `the broker at ${settings.localAddress} has been used by a group: KAFKA_FRESH_PORT needs a fresh one`,
        );
      return;
    }
    await expectPortsFree([port, port + 1], 'KAFKA_FRESH_PORT');
    // Before the start: a start cut off by the hook's timeout leaves a broker that afterAll must stop.
    started = true;
    await startBroker({}, settings);
  }, 240_000);

  afterAll(async () => {
    await kafka?.closeAll();
    if (started) await stopBroker({}, settings);
  }, 120_000);

  test('consumers of many groups joining at once: each joins once, none crashes', async () => {
    const topic = uniqueName('loading');
    // Creating the topic leaves __consumer_offsets uncreated: the consumers' FindCoordinator creates it.
    await kafka.createTopic(topic, 2);
    const crashes: string[] = [];
    const joins = new Map<string, number>();
    const groups = Array.from({ length: GROUPS }, () => uniqueName('loading-group'));
    await Promise.all(
      groups.map(async (groupId) => {
        const consumer = kafka.consumer({ groupId });
        consumer.on(consumer.events.CRASH, ({ payload }) =>
          crashes.push(`${groupId}: ${payload.error.name} ${payload.error.message}`),
        );
        consumer.on(consumer.events.GROUP_JOIN, () => joins.set(groupId, (joins.get(groupId) ?? 0) + 1));
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({ eachBatch: async () => undefined });
      }),
    );
    await waitFor(`all ${GROUPS} groups joined`, 60_000, () => crashes.length > 0 || joins.size === GROUPS);
    expect(crashes).toEqual([]);
    for (const groupId of groups) await kafka.waitForStableGroup(groupId, 1, 30_000);
    // A crash would have made kafkajs join again, as a new member.
    expect([...joins.values()]).toEqual(groups.map(() => 1));
  }, 180_000);
});
