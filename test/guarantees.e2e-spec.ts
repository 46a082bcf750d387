/**
 * README guarantees that no other spec checks directly: one message at a time per partition, heartbeats during a
 * backoff longer than the session timeout, a stopped partition resuming, `ctx.signal` and `shutdownTimeoutMs` at
 * shutdown, a broker that is down at start, a guard rejection swallowed by a filter, a decode error not retried.
 */
import { beforeEach, describe, expect, test } from '@jest/globals';
import { expectErrorLines } from './support/error-lines.js';
import {
  type ArgumentsHost,
  Catch,
  type CanActivate,
  Controller,
  type ExceptionFilter,
  Injectable,
  Module,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { EMPTY, type Observable } from 'rxjs';
import { DLT_HEADERS, KafkaHandler, KafkaModule } from 'nest-kafka-groups';
import { TEST_CONSUMER_TUNING, testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { freePort } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';
import { recording, recordingFeature, recordingSuite } from './support/recording-feature.js';

const { deliveries } = recording;

const QUICK_RETRY = { attempts: 2, initialDelayMs: 50, multiplier: 1, maxDelayMs: 50 };

describe('guarantees', () => {
  const { kafka, apps } = recordingSuite();

  async function start(groupId: string, topic: string, root: object = {}, featureExtra: object = {}) {
    const started = await startTestApp([recordingFeature(groupId, topic, featureExtra)], root);
    apps.push(started.app);
    return started;
  }

  test('one message at a time per partition, in offset order, while partitions run concurrently', async () => {
    const topic = uniqueName('one-at-a-time');
    const groupId = uniqueName('one-at-a-time');
    await kafka.createTopic(topic, 4);
    const inFlight = new Map<number, number>();
    let maxPerPartition = 0;
    let total = 0;
    let maxTotal = 0;
    recording.behaviour = async (_, ctx) => {
      const here = (inFlight.get(ctx.partition) ?? 0) + 1;
      inFlight.set(ctx.partition, here);
      maxPerPartition = Math.max(maxPerPartition, here);
      maxTotal = Math.max(maxTotal, ++total);
      await sleep(3);
      inFlight.set(ctx.partition, inFlight.get(ctx.partition)! - 1);
      total--;
    };
    await start(groupId, topic, {}, { partitionsConsumedConcurrently: 4 });
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 400, (i) => `k${i % 16}`);
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);

    expect(deliveries).toHaveLength(400);
    expect(maxPerPartition).toBe(1);
    expect(maxTotal).toBeGreaterThan(1);
    for (let partition = 0; partition < 4; partition++) {
      const offsets = deliveries.filter((d) => d.partition === partition).map((d) => Number(d.offset));
      expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => i));
    }
  });

  test('a backoff longer than the session timeout: heartbeats go on, same member, nothing redelivered', async () => {
    const topic = uniqueName('long-backoff');
    const groupId = uniqueName('long-backoff');
    await kafka.createTopic(topic, 2);
    // The backoff is half again the session timeout (shorter than the test tuning's, to halve the wait).
    const consumer = { ...TEST_CONSUMER_TUNING, sessionTimeout: 3_000 };
    const backoffMs = consumer.sessionTimeout * 1.5;
    recording.behaviour = (payload, ctx) => {
      if (payload.seq === 0 && ctx.attempt === 1)
        throw new Error('fails once, then waits out a long backoff');
    };
    const { server } = await start(groupId, topic, {
      consumer,
      retry: { attempts: 2, initialDelayMs: backoffMs, multiplier: 1, maxDelayMs: backoffMs },
    });
    const group = await kafka.waitForStableGroup(groupId, 1);
    const member = server.groups[0].members[0];
    const memberId = group.members[0].memberId;
    expect(member.memberId).toBe(memberId);

    await kafka.produceKeyed(topic, 20, (i) => `k${i % 4}`);
    await waitFor('the first attempt of seq 0', 10_000, () => deliveries.some((d) => d.seq === 0));
    const admin = await kafka.admin();
    // Through the whole backoff the group stays Stable with the same member (an evicted member rejoins as a new one).
    while (deliveries.filter((d) => d.seq === 0).length < 2) {
      const { groups } = await admin.describeGroups([groupId]);
      expect({ state: groups[0].state, members: groups[0].members.map((m) => m.memberId) }).toEqual({
        state: 'Stable',
        members: [memberId],
      });
      expect(member.memberId).toBe(memberId);
      await sleep(500);
    }
    await kafka.waitForCommittedToEnd(groupId, topic);
    const attempts = deliveries.filter((d) => d.seq === 0);
    expect(attempts.map((d) => d.attempt)).toEqual([1, 2]);
    expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(backoffMs - 50);
    // Every other message once: no rebalance redelivered anything.
    expect(
      deliveries
        .filter((d) => d.seq !== 0)
        .map((d) => d.seq)
        .sort((a, b) => a - b),
    ).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(member.memberId).toBe(memberId);
  });

  describe('a partition stopped by an exhausted message (dead letters off) resumes', () => {
    // Stopping a partition is an ERROR by design: these tests provoke it.
    beforeEach(() => expectErrorLines(/dead letters are off: partition stopped/));
    let broken = true;
    async function stopPartition(groupId: string, topic: string) {
      broken = true;
      recording.behaviour = (payload) => {
        if (payload.seq === 1 && broken) throw new Error('broken until the fix is deployed');
      };
      const started = await start(groupId, topic, { retry: QUICK_RETRY, deadLetter: { enabled: false } });
      await kafka.waitForStableGroup(groupId, 1);
      await kafka.produceKeyed(topic, 3, () => 'k');
      const member = started.server.groups[0].members[0];
      await waitFor('the partition stopped', 20_000, () => member.stoppedPartitions.size === 1);
      // Committed within commitIntervalMs: up to the stopped message, never past it.
      let committed = -1;
      await waitFor('the offset before the stopped message committed', 10_000, async () => {
        committed = (await kafka.offsets(groupId, topic))[0].committed;
        return committed !== -1;
      });
      expect(committed).toBe(1);
      expect(deliveries.map((d) => [d.seq, d.attempt])).toEqual([
        [0, 1],
        [1, 1],
        [1, 2],
      ]);
      broken = false;
      return started;
    }

    test('after a rebalance (a second member joins)', async () => {
      const topic = uniqueName('stopped-rebalance');
      const groupId = uniqueName('stopped-rebalance');
      await kafka.createTopic(topic, 1);
      await stopPartition(groupId, topic);
      await start(groupId, topic, { retry: QUICK_RETRY, deadLetter: { enabled: false } });
      await kafka.waitForCommittedToEnd(groupId, topic);
      expect(deliveries.slice(3).map((d) => d.seq)).toEqual([1, 2]);
    });

    test('after a restart', async () => {
      const topic = uniqueName('stopped-restart');
      const groupId = uniqueName('stopped-restart');
      await kafka.createTopic(topic, 1);
      const { app } = await stopPartition(groupId, topic);
      apps.splice(apps.indexOf(app), 1);
      await app.close();
      await start(groupId, topic, { retry: QUICK_RETRY, deadLetter: { enabled: false } });
      await kafka.waitForCommittedToEnd(groupId, topic);
      expect(deliveries.slice(3).map((d) => d.seq)).toEqual([1, 2]);
    });
  });

  describe('shutdown', () => {
    test('ctx.signal is aborted at shutdown, so a long handler can stop early', async () => {
      const topic = uniqueName('abort-signal');
      const groupId = uniqueName('abort-signal');
      await kafka.createTopic(topic, 1);
      let abortedDuringHandler = false;
      recording.behaviour = async (_, ctx) => {
        const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
        await Promise.race([aborted, sleep(30_000)]);
        abortedDuringHandler = ctx.signal.aborted;
      };
      const { app } = await start(groupId, topic, { shutdownTimeoutMs: 20_000 });
      await kafka.waitForStableGroup(groupId, 1);
      await kafka.produceKeyed(topic, 1, () => 'k');
      await waitFor('the handler running', 10_000, () => deliveries.length === 1);
      apps.pop();
      const closing = performance.now();
      await app.close();
      expect(abortedDuringHandler).toBe(true);
      // Well before both the handler's own 30 s and the 20 s shutdown bound: the signal ended it.
      expect(performance.now() - closing).toBeLessThan(10_000);
    });

    test('shutdownTimeoutMs bounds a handler that ignores the signal; its message is redelivered', async () => {
      const topic = uniqueName('shutdown-bound');
      const groupId = uniqueName('shutdown-bound');
      await kafka.createTopic(topic, 1);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      recording.behaviour = async () => {
        if (deliveries.length === 1) await released;
      };
      const shutdownTimeoutMs = 1_500;
      // The stuck member is still in the group when the next one joins: that join waits out the rebalance timeout,
      // a shorter one than the test tuning's (both members, the group waits for the longest).
      const consumer = { ...TEST_CONSUMER_TUNING, sessionTimeout: 3_000, rebalanceTimeout: 4_000 };
      const { app } = await start(groupId, topic, { shutdownTimeoutMs, consumer });
      await kafka.waitForStableGroup(groupId, 1);
      await kafka.produceKeyed(topic, 1, () => 'k');
      await waitFor('the handler running', 10_000, () => deliveries.length === 1);
      apps.pop();
      const closing = performance.now();
      try {
        await app.close();
        const took = performance.now() - closing;
        expect(took).toBeGreaterThanOrEqual(shutdownTimeoutMs - 50);
        expect(took).toBeLessThan(shutdownTimeoutMs + 5_000);
        // Not committed: the next member gets the message again (once the stuck one is out of the group).
        expect((await kafka.offsets(groupId, topic))[0].committed).toBeLessThan(1);
        await start(groupId, topic, { consumer });
        await kafka.waitForCommittedToEnd(groupId, topic);
      } finally {
        release();
      }
      expect(deliveries.map((d) => d.offset)).toEqual(['0', '0']);
    });
  });

  test('a broker that is down at start: the member retries and consumes once it is reachable', async () => {
    const topic = uniqueName('broker-late');
    const groupId = uniqueName('broker-late');
    await kafka.createTopic(topic, 2);
    await kafka.produceKeyed(topic, 10, (i) => `k${i}`);
    // The app's only seed broker is a port that refuses connections until the proxy below listens there; after
    // bootstrap, clients use the advertised address of the real broker.
    const port = await freePort();
    const { server } = await start(groupId, topic, {
      brokers: [`127.0.0.1:${port}`],
      clientRetry: { initialRetryTime: 200, maxRetryTime: 1_000, retries: 30 },
    });
    const member = server.groups[0].members[0];
    await sleep(3_000);
    expect(deliveries).toHaveLength(0);
    expect(member.state).not.toBe('joined');

    const proxy = await listenProxy(port, testBrokers()[0]);
    try {
      await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
      expect(deliveries.map((d) => d.seq).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 10 }, (_, i) => i),
      );
      expect(member.state).toBe('joined');
    } finally {
      await proxy.close();
    }
  });

  test('a guard rejection swallowed by an exception filter is a skip: committed, not dead-lettered', async () => {
    const topic = uniqueName('guard-skip');
    const groupId = uniqueName('guard-skip');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const caught: string[] = [];
    let handled = 0;

    @Injectable()
    class DenyAll implements CanActivate {
      canActivate(): boolean {
        return false;
      }
    }
    @Catch()
    class SwallowFilter implements ExceptionFilter {
      catch(error: unknown, _: ArgumentsHost): Observable<never> {
        caught.push((error as Error).constructor.name);
        return EMPTY;
      }
    }
    @Controller()
    class GuardedController {
      @KafkaHandler('${TOPIC}')
      @UseGuards(DenyAll)
      @UseFilters(SwallowFilter)
      handle() {
        handled++;
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [GuardedController],
      providers: [DenyAll],
    })
    class GuardedModule {}

    const { app, server } = await startTestApp([GuardedModule]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 2, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(handled).toBe(0);
    expect(caught).toEqual(['ForbiddenException', 'ForbiddenException']);
    const [dlt] = await (await kafka.admin()).fetchTopicOffsets(`${topic}-dlt`);
    expect(Number(dlt.high)).toBe(0);
    expect(server.groups[0].members[0].counts).toMatchObject({ failed: 0, deadLettered: 0 });
  });

  test('a value that is not JSON is not retried: one failure, straight to the dead-letter topic', async () => {
    const topic = uniqueName('not-json');
    const groupId = uniqueName('not-json');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const { server } = await start(groupId, topic, {
      retry: { attempts: 5, initialDelayMs: 50, multiplier: 1, maxDelayMs: 50 },
    });
    await kafka.waitForStableGroup(groupId, 1);
    const producer = await kafka.producer();
    await producer.send({
      topic,
      messages: [
        { key: 'bad', value: '{"seq": 0, "truncated' },
        { key: 'good', value: JSON.stringify({ seq: 1 }) },
      ],
    });
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(deliveries.map((d) => d.seq)).toEqual([1]);
    expect(server.groups[0].members[0].counts).toEqual({ processed: 1, failed: 1, deadLettered: 1 });
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.key!.toString()).toBe('bad');
    expect(dead.value!.toString()).toBe('{"seq": 0, "truncated');
    expect(dead.headers![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('KafkaPayloadDecodeError');
  });
});

/** A TCP proxy on 127.0.0.1:`port` to `target`; close() ends it and its connections. */
async function listenProxy(port: number, target: string): Promise<{ close(): Promise<void> }> {
  const [host, targetPort] = target.split(':');
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(targetPort), host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
