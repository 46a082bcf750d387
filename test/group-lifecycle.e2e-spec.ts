import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, Injectable, type INestApplication, Module, type Type } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  type KafkaGroupContext,
  type KafkaGroupsStatus,
  KafkaGroups,
  KafkaHandler,
  KafkaModule,
  type KafkaModuleOptions,
  type KafkaRebalanceEvent,
  type KafkaRebalanceListener,
} from 'nest-kafka-groups';
import { KafkaTestClient, TEST_CONSUMER_TUNING, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { errorLinesSoFar, expectErrorLines } from './support/error-lines.js';
import { freePort } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

/**
 * What a NestJS maintainer and a Spring Kafka user observe of a group's lifecycle: the microservice's `status`
 * (Nest's KafkaStatus values) and the per-group rebalance listener (Spring's ConsumerRebalanceListener), on a real
 * broker with two members.
 */

/** Everything the apps' handlers and listeners saw, in one order. */
interface Seen {
  app: string;
  kind: 'message' | 'assigned' | 'revoked' | 'lost';
  partitions: number[];
  offset?: string;
  memberId?: string;
  /** At revocation: the group's committed offset of each revoked partition, read from the broker. */
  committed?: Record<number, number>;
}

describe('group lifecycle: status and rebalance listener', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];
  let seen: Seen[] = [];
  /** How long the handler of `app` takes on a message: ms, or until a promise settles; none by default. */
  let delayOf: (app: string, offset: string) => number | Promise<void> = () => 0;
  function handlerDelay(app: string, offset: string): Promise<void> | undefined {
    const delay = delayOf(app, offset);
    if (typeof delay !== 'number') return delay;
    return delay > 0 ? new Promise((resolve) => setTimeout(resolve, delay)) : undefined;
  }

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    seen = [];
    delayOf = () => 0;
  });
  afterAll(() => kafka.closeAll());

  /** A module of group `groupId` on `topic` whose handler and rebalance listener record as `app`. */
  function feature(app: string, groupId: string, topic: string): Type {
    @Injectable()
    class RecordingListener implements KafkaRebalanceListener {
      onPartitionsAssigned(event: KafkaRebalanceEvent) {
        seen.push({ app, kind: 'assigned', partitions: numbers(event), memberId: event.memberId });
      }
      async onPartitionsRevoked(event: KafkaRebalanceEvent) {
        const entry: Seen = { app, kind: 'revoked', partitions: numbers(event), memberId: event.memberId };
        seen.push(entry);
        const offsets = await kafka.offsets(groupId, topic);
        entry.committed = Object.fromEntries(offsets.map((o) => [o.partition, o.committed]));
      }
      async onPartitionsLost(event: KafkaRebalanceEvent) {
        const entry: Seen = { app, kind: 'lost', partitions: numbers(event), memberId: event.memberId };
        seen.push(entry);
        const offsets = await kafka.offsets(groupId, topic);
        entry.committed = Object.fromEntries(offsets.map((o) => [o.partition, o.committed]));
      }
    }

    @Controller()
    class RecordingController {
      @KafkaHandler('${TOPIC}')
      handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext) {
        seen.push({ app, kind: 'message', partitions: [ctx.partition], offset: ctx.offset });
        return handlerDelay(app, ctx.offset);
      }
    }

    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId,
          topicVariables: { TOPIC: topic },
          rebalanceListener: RecordingListener,
        }),
      ],
      controllers: [RecordingController],
      providers: [RecordingListener],
    })
    class LifecycleFeatureModule {}
    return LifecycleFeatureModule;
  }

  async function start(modules: Type[], root: Partial<KafkaModuleOptions> = {}) {
    const started = await startTestApp(modules, root);
    apps.push(started.app);
    return started;
  }

  /** The statuses the app's microservice emits from now on (Nest's `INestMicroservice.status`). */
  function statusesOf(app: INestApplication): KafkaGroupsStatus[] {
    const statuses: KafkaGroupsStatus[] = [];
    const [microservice] = app.getMicroservices();
    microservice.status.subscribe((status) => statuses.push(status as KafkaGroupsStatus));
    return statuses;
  }

  async function close(app: INestApplication): Promise<void> {
    apps.splice(apps.indexOf(app), 1);
    await app.close();
  }

  test('status: connected after start, rebalancing then connected when a second member joins, stopped on close', async () => {
    const topic = uniqueName('lc-status');
    const groupId = uniqueName('lc-status');
    await kafka.createTopic(topic, 2);
    const a = await start([feature('a', groupId, topic)]);
    const statuses = statusesOf(a.app);
    await waitFor('a connected', 30_000, () => statuses.at(-1) === 'connected');
    // Before its first join the member is not connected yet (a fresh coordinator may make it rejoin once).
    const joined = statuses.indexOf('connected');
    for (const status of statuses.slice(0, joined)) expect(['disconnected', 'rebalancing']).toContain(status);
    expect(statuses.slice(joined)).toEqual(['connected']);

    const b = await start([feature('b', groupId, topic)]);
    await kafka.waitForStableGroup(groupId, 2);
    await waitFor(
      'a connected again',
      30_000,
      () => statuses.length >= joined + 3 && statuses.at(-1) === 'connected',
    );
    expect(statuses.slice(joined)).toEqual(['connected', 'rebalancing', 'connected']);

    await close(a.app);
    // Nothing of the way down (the member's own stop) is told before `stopped`.
    expect(statuses.slice(joined)).toEqual(['connected', 'rebalancing', 'connected', 'stopped']);
    await close(b.app);
  }, 90_000);

  test('status: a broker that cannot be reached at start is disconnected, and stays so (no crash loop)', async () => {
    const { app } = await start([feature('a', uniqueName('lc-down'), uniqueName('lc-down'))], {
      // A port the system just handed out and closed again: connecting is refused (a fixed port may be another
      // process's listener).
      brokers: [`127.0.0.1:${await freePort()}`],
      restartBackoff: { initialDelayMs: 200, maxDelayMs: 400 },
    });
    const statuses = statusesOf(app);
    // Long enough for several failed connects and recreations of the member.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(statuses).toEqual(['disconnected']);
    await close(app);
    expect(statuses).toEqual(['disconnected', 'stopped']);
  }, 60_000);

  test('rebalance listener: revoked after every handled offset was committed, then assigned; each assignment ends once', async () => {
    const topic = uniqueName('lc-listener');
    const groupId = uniqueName('lc-listener');
    await kafka.createTopic(topic, 4);
    // Nothing is committed by the interval during the test: only the commits before giving partitions up.
    const root = { commitIntervalMs: 600_000 };
    const a = await start([feature('a', groupId, topic)], root);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 40, (i) => `k${i}`);
    await waitFor('a handled all 40', 30_000, () => seen.filter((s) => s.kind === 'message').length === 40);
    const before = await kafka.offsets(groupId, topic);
    expect(before.map((o) => o.committed)).toEqual([-1, -1, -1, -1]);
    const ends = Object.fromEntries(before.map((o) => [o.partition, o.end]));

    const b = await start([feature('b', groupId, topic)], root);
    await kafka.waitForStableGroup(groupId, 2);
    await waitFor(
      'both assigned',
      30_000,
      () => listenerCalls('b').length === 1 && listenerCalls('a').length === 3,
    );

    // a: its first assignment, revoked with every handled offset committed, then its share.
    const [firstA, revokedA, secondA] = listenerCalls('a');
    expect(firstA).toMatchObject({ kind: 'assigned', partitions: [0, 1, 2, 3] });
    expect(revokedA).toMatchObject({ kind: 'revoked', partitions: [0, 1, 2, 3], memberId: firstA.memberId });
    expect(revokedA.committed).toEqual(ends);
    expect(secondA.kind).toBe('assigned');
    const [firstB] = listenerCalls('b');
    expect(firstB.kind).toBe('assigned');
    expect([...secondA.partitions, ...firstB.partitions].sort()).toEqual([0, 1, 2, 3]);
    expect(secondA.partitions).toHaveLength(2);
    // a handled nothing between the revocation and its new assignment.
    const revokedAt = seen.indexOf(revokedA);
    expect(
      seen.slice(revokedAt, seen.indexOf(secondA)).filter((s) => s.app === 'a' && s.kind === 'message'),
    ).toEqual([]);

    // More messages, spread over both members; then b leaves the group with the application.
    await kafka.produceKeyed(
      topic,
      40,
      (i) => `k${i}`,
      () => ({ round: 2 }),
    );
    await waitFor('80 handled', 30_000, () => seen.filter((s) => s.kind === 'message').length === 80);
    const endsAfter = Object.fromEntries(
      (await kafka.offsets(groupId, topic)).map((o) => [o.partition, o.end]),
    );
    await close(b.app);
    await waitFor('a assigned everything again', 30_000, () => listenerCalls('a').length === 5);

    const [, , , revokedA2, thirdA] = listenerCalls('a');
    const [, revokedB] = listenerCalls('b');
    // b: revoked at its stop, after its handled offsets were committed (its partitions' ends).
    expect(revokedB).toMatchObject({ kind: 'revoked', partitions: firstB.partitions });
    for (const partition of firstB.partitions)
      expect(revokedB.committed![partition]).toBe(endsAfter[partition]);
    expect(revokedA2).toMatchObject({ kind: 'revoked', partitions: secondA.partitions });
    for (const partition of secondA.partitions)
      expect(revokedA2.committed![partition]).toBe(endsAfter[partition]);
    expect(thirdA).toMatchObject({ kind: 'assigned', partitions: [0, 1, 2, 3] });
    expect(listenerCalls('b')).toHaveLength(2);
    // Every message handled once: each revocation came after its partitions' offsets were committed.
    const handled = seen.filter((s) => s.kind === 'message').map((s) => `${s.partitions[0]}@${s.offset}`);
    expect(new Set(handled).size).toBe(80);

    await close(a.app);
    const [, , , , , revokedA3] = listenerCalls('a');
    expect(revokedA3).toMatchObject({ kind: 'revoked', partitions: [0, 1, 2, 3] });
    expect(revokedA3.committed).toEqual(endsAfter);
  }, 120_000);

  test('rebalance listener: a member evicted while its handler ran past the rebalance timeout is told lost, nothing committed', async () => {
    const topic = uniqueName('lc-lost');
    const groupId = uniqueName('lc-lost');
    await kafka.createTopic(topic, 1);
    const root = {
      commitIntervalMs: 600_000,
      // The group waits this long for a member's rejoin before it goes on without it.
      consumer: { ...TEST_CONSUMER_TUNING, rebalanceTimeout: 3_000 },
    };
    // a's handler on the first message outlasts the rebalance timeout: it runs until b, which joins meanwhile, has
    // handled all three messages, which b can only do once the group went on without a. The wait is bounded: if a
    // is never evicted, the handler ends after it and the listener checks below fail.
    const bHandledAll = () => seen.some((s) => s.app === 'b' && s.kind === 'message' && s.offset === '2');
    delayOf = (app, offset) =>
      app === 'a' && offset === '0'
        ? waitFor('b handling all three messages', 30_000, bHandledAll).then(
            () => undefined,
            () => undefined,
          )
        : 0;
    await start([feature('a', groupId, topic)], root);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 3, () => 'k');
    await waitFor('a handling offset 0', 10_000, () =>
      seen.some((s) => s.app === 'a' && s.kind === 'message'),
    );

    await start([feature('b', groupId, topic)], root);
    await waitFor('a lost its partition and joined again', 40_000, () => listenerCalls('a').length === 3);
    await kafka.waitForStableGroup(groupId, 2);
    await waitFor('b revoked and assigned again', 30_000, () => listenerCalls('b').length === 3);

    const [firstA, lostA, secondA] = listenerCalls('a');
    expect(firstA).toMatchObject({ kind: 'assigned', partitions: [0] });
    expect(lostA).toMatchObject({ kind: 'lost', partitions: [0], memberId: firstA.memberId });
    // a committed nothing it handled: the offsets went to b uncommitted.
    expect(lostA.committed).toEqual({ 0: -1 });
    expect(secondA.kind).toBe('assigned');
    const [firstB, revokedB, secondB] = listenerCalls('b');
    // b got the partition while a was out of the group, and handled offset 0 again (at-least-once).
    expect(firstB).toMatchObject({ kind: 'assigned', partitions: [0] });
    expect(seen.filter((s) => s.app === 'b' && s.kind === 'message').map((s) => s.offset)).toContain('0');
    expect(revokedB).toMatchObject({ kind: 'revoked', partitions: [0] });
    expect(revokedB.committed).toEqual({ 0: 3 });
    expect(secondB.kind).toBe('assigned');
    expect([...secondA.partitions, ...secondB.partitions]).toEqual([0]);
  }, 120_000);

  test('two members in one process, stopped and started at run time: status and listener follow each member', async () => {
    const topic = uniqueName('lc-control');
    const groupId = uniqueName('lc-control');
    await kafka.createTopic(topic, 2);
    const { app } = await start([feature('a', groupId, topic)], {
      concurrency: 2,
      commitIntervalMs: 600_000,
    });
    const statuses = statusesOf(app);
    await kafka.waitForStableGroup(groupId, 2);
    await waitFor('connected', 30_000, () => statuses.at(-1) === 'connected');
    await kafka.produceKeyed(topic, 20, (i) => `k${i}`);
    await waitFor('20 handled', 30_000, () => seen.filter((s) => s.kind === 'message').length === 20);
    const ends = Object.fromEntries((await kafka.offsets(groupId, topic)).map((o) => [o.partition, o.end]));

    const groups = app.get(KafkaGroups);
    const beforeStop = seen.length;
    await groups.stop(groupId);
    expect(statuses.at(-1)).toBe('stopped');
    // Each member's last assignment revoked at the stop, after its offsets were committed.
    const revoked = seen.slice(beforeStop).filter((s) => s.kind === 'revoked');
    expect(
      revoked
        .map((s) => s.partitions)
        .flat()
        .sort(),
    ).toEqual([0, 1]);
    for (const entry of revoked) for (const p of entry.partitions) expect(entry.committed![p]).toBe(ends[p]);

    const beforeStart = seen.length;
    await groups.start(groupId);
    await kafka.waitForStableGroup(groupId, 2);
    await waitFor('connected again', 30_000, () => statuses.at(-1) === 'connected');
    // Stopped, then not connected while the fresh consumers start and join, then connected.
    const restarted = statuses.slice(statuses.lastIndexOf('stopped'));
    expect(restarted[0]).toBe('stopped');
    expect(restarted.at(-1)).toBe('connected');
    for (const status of restarted.slice(1, -1)) expect(['disconnected', 'rebalancing']).toContain(status);
    await waitFor('both members assigned a partition', 30_000, () => {
      const assigned = seen.slice(beforeStart).filter((s) => s.kind === 'assigned');
      const last = new Map(assigned.map((s) => [s.memberId, s.partitions]));
      return (
        [...last.values()].flat().sort().join() === '0,1' && [...last.values()].every((p) => p.length === 1)
      );
    });
    // Every assignment is closed by one revocation (or loss) before the member's next one.
    const byMember = new Map<string, string[]>();
    for (const entry of seen.filter((s) => s.kind !== 'message')) {
      const kinds = byMember.get(entry.memberId!) ?? [];
      kinds.push(entry.kind);
      byMember.set(entry.memberId!, kinds);
    }
    for (const kinds of byMember.values()) {
      kinds.forEach((kind, i) => expect(kind).toBe(i % 2 === 0 ? 'assigned' : 'revoked'));
    }
  }, 90_000);

  test('rebalance listener: one that throws is logged with the group and partitions; the member consumes on', async () => {
    const topic = uniqueName('lc-throws');
    const groupId = uniqueName('lc-throws');
    await kafka.createTopic(topic, 2);
    expectErrorLines(
      new RegExp(
        `BrokenListener\\.onPartitionsAssigned failed for group "${groupId}" member 0 \\(.+\\) on ${topic}\\[0,1\\]: ` +
          'cache unavailable; the rebalance goes on',
      ),
    );
    @Injectable()
    class BrokenListener implements KafkaRebalanceListener {
      onPartitionsAssigned(): Promise<void> {
        return Promise.reject(new Error('cache unavailable'));
      }
    }
    @Controller()
    class CountingController {
      @KafkaHandler('${TOPIC}')
      handle(@Ctx() ctx: KafkaGroupContext) {
        seen.push({ app: 'a', kind: 'message', partitions: [ctx.partition], offset: ctx.offset });
      }
    }
    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId,
          topicVariables: { TOPIC: topic },
          rebalanceListener: BrokenListener,
        }),
      ],
      controllers: [CountingController],
      providers: [BrokenListener],
    })
    class BrokenListenerModule {}

    await start([BrokenListenerModule]);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 10, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seen.filter((s) => s.kind === 'message')).toHaveLength(10);
    expect(errorLinesSoFar().filter((line) => line.includes('BrokenListener'))).toHaveLength(1);
  }, 60_000);

  test('rebalance listener: a class that is not a provider of the module fails the start, naming it and the module', async () => {
    @Injectable()
    class UnlistedListener implements KafkaRebalanceListener {}
    @Controller()
    class SomeController {
      @KafkaHandler('${TOPIC}')
      handle() {}
    }
    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId: uniqueName('lc-unlisted'),
          topicVariables: { TOPIC: uniqueName('lc-unlisted') },
          rebalanceListener: UnlistedListener,
        }),
      ],
      controllers: [SomeController],
    })
    class UnlistedModule {}

    await expect(startTestApp([UnlistedModule])).rejects.toThrow(
      /rebalanceListener: UnlistedListener is not a singleton provider of module UnlistedModule; add it to that module's providers/,
    );
  });

  function listenerCalls(app: string): Seen[] {
    return seen.filter((s) => s.app === app && s.kind !== 'message');
  }
});

function numbers(event: KafkaRebalanceEvent): number[] {
  return event.partitions.map((p) => p.partition);
}
