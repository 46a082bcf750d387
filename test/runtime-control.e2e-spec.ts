/**
 * Runtime control through the injectable `KafkaGroups` against a real broker: pause, resume, stop and start under
 * a running producer lose and duplicate nothing; a pause holds across a rebalance (kafkajs forgets it on rejoin);
 * `autoStart: false` consumes nothing until `start`; the calls are safe during a rebalance and during shutdown.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  KafkaGroupContext,
  KafkaGroups,
  KafkaGroupsServer,
  KafkaGroupsShuttingDownError,
  KafkaHandler,
  KafkaModule,
  KafkaUnknownGroupError,
  KafkaUnknownGroupTopicError,
} from 'nest-kafka-groups';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

/** Every delivery, in order, tagged with the test app that handled it. */
const deliveries: { app: string; partition: number; offset: string }[] = [];

interface GroupExtra {
  concurrency?: number;
  autoStart?: boolean;
}

/** A feature module of one group on one topic; its handler tags deliveries with `app`. */
function groupModule(groupId: string, topic: string, extra: GroupExtra, app: string) {
  @Controller()
  class RecordingController {
    @KafkaHandler('${TOPIC}')
    async handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext) {
      deliveries.push({ app, partition: ctx.partition, offset: ctx.offset });
      // Long enough that stop() and pause() meet messages in flight.
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, ...extra })],
    controllers: [RecordingController],
  })
  class GroupModule {}
  return GroupModule;
}

/** Attempts of each message of the failing handler: seq, attempt, when. */
const attempts: { seq: number; attempt: number; at: number }[] = [];

/** A group whose handler fails the first attempt of every message; retries wait `delayMs`. */
function failingFirstAttemptModule(groupId: string, topic: string, delayMs: number) {
  @Controller()
  class FailingController {
    @KafkaHandler('${TOPIC}')
    handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext) {
      attempts.push({ seq: payload.seq, attempt: ctx.attempt, at: Date.now() });
      if (ctx.attempt === 1) throw new Error(`first attempt of ${payload.seq} fails`);
    }
  }

  @Module({
    imports: [
      KafkaModule.forFeature({
        groupId,
        topicVariables: { TOPIC: topic },
        retry: { attempts: 3, initialDelayMs: delayMs, multiplier: 1, maxDelayMs: delayMs },
      }),
    ],
    controllers: [FailingController],
  })
  class FailingModule {}
  return FailingModule;
}

/** A group whose handler fails the first attempt of every message, retried through one retry topic after `delayMs`. */
function retryTopicsModule(groupId: string, topic: string, delayMs: number) {
  @Controller()
  class RetryTopicController {
    @KafkaHandler('${TOPIC}', { retry: { topics: true, delaysMs: [delayMs] } })
    handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext) {
      attempts.push({ seq: payload.seq, attempt: ctx.attempt, at: Date.now() });
      if (ctx.attempt === 1) throw new Error(`first attempt of ${payload.seq} fails`);
    }
  }

  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
    controllers: [RetryTopicController],
  })
  class RetryTopicsModule {}
  return RetryTopicsModule;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('KafkaGroups: runtime control', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    deliveries.length = 0;
    attempts.length = 0;
  });
  afterAll(() => kafka.closeAll());

  async function start(groupId: string, topic: string, extra: GroupExtra = {}, tag = 'app') {
    const { app, server } = await startTestApp([groupModule(groupId, topic, extra, tag)]);
    apps.push(app);
    return { app, server, groups: app.get(KafkaGroups) };
  }

  /** Produces `total` messages in small chunks while the test goes on; resolves when all are written. */
  async function produceWhileRunning(topic: string, total: number, chunk = 20, everyMs = 40): Promise<void> {
    const producer = await kafka.producer();
    for (let sent = 0; sent < total; sent += chunk) {
      const messages = Array.from({ length: Math.min(chunk, total - sent) }, (_, i) => ({
        key: `k${sent + i}`,
        value: JSON.stringify({ seq: sent + i }),
      }));
      await producer.send({ topic, acks: -1, messages });
      await sleep(everyMs);
    }
  }

  /** Every offset of every partition (from 0 to the log end) was delivered exactly once. */
  async function expectEveryMessageOnce(groupId: string, topic: string) {
    const offsets = await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const counts = new Map<string, number>();
    for (const d of deliveries)
      counts.set(`${d.partition}:${d.offset}`, (counts.get(`${d.partition}:${d.offset}`) ?? 0) + 1);
    const lost: string[] = [];
    const duplicated: string[] = [];
    for (const { partition, end } of offsets) {
      for (let offset = 0; offset < end; offset++) {
        const seen = counts.get(`${partition}:${offset}`) ?? 0;
        if (seen === 0) lost.push(`${partition}@${offset}`);
        if (seen > 1) duplicated.push(`${partition}@${offset} x${seen}`);
      }
    }
    expect({ lost, duplicated }).toEqual({ lost: [], duplicated: [] });
    return offsets.reduce((sum, o) => sum + o.end, 0);
  }

  /** Waits until no member of the group in this process handles a message, then returns how many were handled. */
  async function settled(server: KafkaGroupsServer, groupId: string): Promise<number> {
    const runner = server.groups.find((r) => r.groupId === groupId)!;
    await waitFor('no message in flight', 10_000, () => runner.members.every((m) => m.inFlight === 0));
    return deliveries.length;
  }

  test('pause, resume, stop and start under load: nothing lost, nothing duplicated, nothing handled while paused or stopped', async () => {
    const topic = uniqueName('control-load');
    const groupId = uniqueName('control-load-group');
    await kafka.createTopic(topic, 4);
    const { server, groups } = await start(groupId, topic, { concurrency: 2 });
    await kafka.waitForStableGroup(groupId, 2);
    const producing = produceWhileRunning(topic, 1_500);

    await waitFor('some messages handled', 20_000, () => deliveries.length >= 100);
    groups.pause(groupId);
    const atPause = await settled(server, groupId);
    await sleep(1_000);
    expect(deliveries.length).toBe(atPause);
    expect(groups.list().find((g) => g.groupId === groupId)?.pausedTopics).toEqual([topic]);

    groups.resume(groupId, [topic]);
    await waitFor('messages handled after the resume', 20_000, () => deliveries.length > atPause + 50);

    await groups.stop(groupId);
    expect(groups.isRunning(groupId)).toBe(false);
    const stopped = groups.list().find((g) => g.groupId === groupId)!;
    expect(stopped.running).toBe(false);
    expect(stopped.members.map((m) => m.state)).toEqual(['stopped', 'stopped']);
    const atStop = deliveries.length;
    const { groups: described } = await (await kafka.admin()).describeGroups([groupId]);
    expect(described[0].state).toBe('Empty');
    await sleep(800);
    expect(deliveries.length).toBe(atStop);

    await groups.start(groupId);
    expect(groups.isRunning(groupId)).toBe(true);
    await kafka.waitForStableGroup(groupId, 2);
    await waitFor('messages handled after the start', 20_000, () => deliveries.length > atStop + 50);

    // A pause survives a stop and a start: the restarted members join paused.
    groups.pause(groupId);
    await groups.stop(groupId);
    await groups.start(groupId);
    await kafka.waitForStableGroup(groupId, 2);
    const whilePaused = await settled(server, groupId);
    await sleep(1_000);
    expect(deliveries.length).toBe(whilePaused);
    groups.resume(groupId);

    await producing;
    const total = await expectEveryMessageOnce(groupId, topic);
    expect(total).toBe(1_500);
  });

  test('a pause holds across a rebalance: a second process joins, the paused member still handles nothing', async () => {
    const topic = uniqueName('control-rebalance');
    const groupId = uniqueName('control-rebalance-group');
    await kafka.createTopic(topic, 4);
    const first = await start(groupId, topic, {}, 'first');
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 200, (i) => `k${i}`);
    await waitFor('the first 200 handled', 30_000, () => deliveries.length === 200);

    first.groups.pause(groupId);
    await kafka.produceKeyed(topic, 200, (i) => `k${i}`);
    const second = await start(groupId, topic, {}, 'second');
    await kafka.waitForStableGroup(groupId, 2);
    const firstPartitions = first.server.groups[0].members[0].assignment[topic];
    expect(firstPartitions.length).toBeGreaterThan(0);
    // The second process consumes its partitions; the first, paused, none of its own.
    await waitFor('the second process handles its partitions', 30_000, () =>
      deliveries.some((d) => d.app === 'second'),
    );
    await sleep(1_500);
    expect(deliveries.filter((d) => d.app === 'first').length).toBe(200);

    first.groups.resume(groupId);
    const total = await expectEveryMessageOnce(groupId, topic);
    expect(total).toBe(400);
    expect(second.groups.list()[0].pausedTopics).toEqual([]);
  });

  test("the application's resume leaves a partition in its retry delay paused; a delay that ends leaves a paused topic paused", async () => {
    const topic = uniqueName('control-held');
    const groupId = uniqueName('control-held-group');
    const delayMs = 1_500;
    await kafka.createTopic(topic, 1);
    const { app } = await startTestApp([failingFirstAttemptModule(groupId, topic, delayMs)]);
    apps.push(app);
    const groups = app.get(KafkaGroups);
    await kafka.waitForStableGroup(groupId, 1);
    const attemptOf = (seq: number, attempt: number) =>
      attempts.find((a) => a.seq === seq && a.attempt === attempt);

    // A pause and resume by the application while the partition waits for its retry: the retry still waits.
    await kafka.produceKeyed(
      topic,
      1,
      () => 'k',
      () => ({ seq: 0 }),
    );
    const first = await waitFor('attempt 1 of message 0', 20_000, () => attemptOf(0, 1));
    groups.pause(groupId);
    groups.resume(groupId);
    const second = await waitFor('attempt 2 of message 0', 20_000, () => attemptOf(0, 2));
    expect(second.at - first.at).toBeGreaterThanOrEqual(delayMs - 100);

    // The application pauses while the partition waits for its retry: the delay ends, the topic stays paused.
    await kafka.produceKeyed(
      topic,
      1,
      () => 'k',
      () => ({ seq: 1 }),
    );
    await waitFor('attempt 1 of message 1', 20_000, () => attemptOf(1, 1));
    groups.pause(groupId);
    await sleep(delayMs + 1_500);
    expect(attemptOf(1, 2)).toBeUndefined();
    groups.resume(groupId);
    await waitFor('attempt 2 of message 1 after the resume', 20_000, () => attemptOf(1, 2));
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(attempts.map(({ seq, attempt }) => `${seq}#${attempt}`)).toEqual(['0#1', '0#2', '1#1', '1#2']);
  });

  test("pausing a handler's topic pauses its retry topics: no retry is handled until the resume", async () => {
    const topic = uniqueName('control-retry-topics');
    const groupId = uniqueName('control-retry-topics-group');
    const retryTopic = `${topic}-retry`;
    const delayMs = 1_000;
    await kafka.createTopic(topic, 1);
    const { app } = await startTestApp([retryTopicsModule(groupId, topic, delayMs)], {
      topics: { create: true },
    });
    apps.push(app);
    const groups = app.get(KafkaGroups);
    await kafka.waitForStableGroup(groupId, 1);
    const attemptOf = (seq: number, attempt: number) =>
      attempts.find((a) => a.seq === seq && a.attempt === attempt);

    await kafka.produceKeyed(
      topic,
      1,
      () => 'k0',
      () => ({ seq: 0 }),
    );
    await waitFor('attempt 1 of message 0', 20_000, () => attemptOf(0, 1));
    // The record is on its way to the retry topic (or waiting there for its due time) when the main topic pauses.
    groups.pause(groupId, [topic]);
    await sleep(delayMs + 2_500);
    expect(attemptOf(0, 2)).toBeUndefined();
    expect(groups.list()[0].pausedTopics.sort()).toEqual([topic, retryTopic].sort());

    groups.resume(groupId, [topic]);
    expect(groups.list()[0].pausedTopics).toEqual([]);
    await waitFor('attempt 2 of message 0 after the resume', 20_000, () => attemptOf(0, 2));
    await kafka.waitForCommittedToEnd(groupId, retryTopic);
    expect(attempts.map(({ seq, attempt }) => `${seq}#${attempt}`)).toEqual(['0#1', '0#2']);

    // Naming a retry topic pauses just that one.
    groups.pause(groupId, [retryTopic]);
    expect(groups.list()[0].pausedTopics).toEqual([retryTopic]);
    groups.resume(groupId);
  });

  test('autoStart: false consumes nothing until start(), then everything once', async () => {
    const topic = uniqueName('control-autostart');
    const groupId = uniqueName('control-autostart-group');
    await kafka.createTopic(topic, 2);
    await kafka.produceKeyed(topic, 50, (i) => `k${i}`);
    const { groups } = await start(groupId, topic, { autoStart: false });

    expect(groups.isRunning(groupId)).toBe(false);
    expect(groups.list()).toEqual([
      {
        groupId,
        topics: [topic],
        running: false,
        autoStart: false,
        pausedTopics: [],
        members: [expect.objectContaining({ memberId: null, state: 'stopped' })],
      },
    ]);
    await sleep(1_500);
    expect(deliveries).toHaveLength(0);
    const { groups: described } = await (await kafka.admin()).describeGroups([groupId]);
    expect(described[0].members).toHaveLength(0);

    await groups.start(groupId);
    await waitFor('50 handled', 30_000, () => deliveries.length === 50);
    expect(await expectEveryMessageOnce(groupId, topic)).toBe(50);
  });

  test('stop and start during a rebalance under load lose nothing', async () => {
    const topic = uniqueName('control-during-rebalance');
    const groupId = uniqueName('control-during-rebalance-group');
    await kafka.createTopic(topic, 4);
    const first = await start(groupId, topic, { concurrency: 2 });
    await kafka.waitForStableGroup(groupId, 2);
    const producing = produceWhileRunning(topic, 800);
    await waitFor('some handled', 20_000, () => deliveries.length >= 50);

    // The second app's members join: the group rebalances while the first app stops and starts.
    const joining = start(groupId, topic);
    await sleep(50);
    await first.groups.stop(groupId);
    await first.groups.start(groupId);
    await joining;
    await kafka.waitForStableGroup(groupId, 3);
    await producing;

    const offsets = await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const seen = new Set(deliveries.map((d) => `${d.partition}:${d.offset}`));
    const lost = offsets.flatMap(({ partition, end }) =>
      Array.from({ length: end }, (_, offset) => `${partition}:${offset}`).filter((key) => !seen.has(key)),
    );
    expect(lost).toEqual([]);
    expect(offsets.reduce((sum, o) => sum + o.end, 0)).toBe(800);
  });

  test('typed errors name the group; start during shutdown is refused, stop during shutdown is quiet', async () => {
    const topic = uniqueName('control-errors');
    const groupId = uniqueName('control-errors-group');
    await kafka.createTopic(topic, 1);
    const { app, server, groups } = await start(groupId, topic);

    expect(() => groups.pause('no-such-group')).toThrow(KafkaUnknownGroupError);
    expect(() => groups.isRunning('no-such-group')).toThrow(
      `No consumer group "no-such-group" runs in this process (its groups: "${groupId}")`,
    );
    await expect(groups.stop('no-such-group')).rejects.toThrow(KafkaUnknownGroupError);
    expect(() => groups.pause(groupId, ['other-topic'])).toThrow(
      new KafkaUnknownGroupTopicError(groupId, 'other-topic', [topic]),
    );

    await kafka.waitForStableGroup(groupId, 1);
    await groups.stop(groupId);
    await groups.start(groupId);
    await kafka.waitForStableGroup(groupId, 1);
    await groups.stop(groupId);
    const closing = app.close();
    apps.length = 0;
    await waitFor('the shutdown began', 10_000, () => server.groups[0].closed);
    await expect(groups.start(groupId)).rejects.toThrow(KafkaGroupsShuttingDownError);
    await expect(groups.start(groupId)).rejects.toThrow(
      `Cannot start consumer group "${groupId}": the application is shutting down`,
    );
    await groups.stop(groupId);
    await closing;
    expect(groups.isRunning(groupId)).toBe(false);
  });
});
