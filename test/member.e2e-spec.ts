import { describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication } from '@nestjs/common';
import { KafkaHandler } from 'nest-kafka-groups';
import { TEST_CONSUMER_TUNING, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';
import { recording, recordingFeature, recordingSuite } from './support/recording-feature.js';

/**
 * Issue 9 findings on the consumer member that need a broker: shutdown versus attempts (2), start versus stop (6),
 * heartbeats while a handler runs and maxProcessingTimeMs (8), attempt counts across rejoins (11), shutdown bounds
 * (12). The pure parts are unit specs beside the code (failure-policy, partition-ledger, batch-watch, resume-timers).
 */
const { deliveries } = recording;

/** The same group on another topic only: its joins and leaves rebalance the group without taking `topic`. */
@Controller()
class OtherTopicController {
  @KafkaHandler('${TOPIC}')
  handle() {}
}

/** Resolves when the signal aborts; rejects with its reason, as a handler that honours `ctx.signal` does. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

describe('consumer member (issue 9)', () => {
  const { kafka, apps } = recordingSuite();

  async function start(groupId: string, topic: string, root: object = {}, members = 1) {
    const started = await startTestApp([recordingFeature(groupId, topic)], root);
    apps.push(started.app);
    await kafka.waitForStableGroup(groupId, members);
    return started;
  }

  async function close(app: INestApplication): Promise<number> {
    apps.splice(apps.indexOf(app), 1);
    const began = Date.now();
    await app.close();
    return Date.now() - began;
  }

  async function deadLetterCount(topic: string): Promise<number> {
    const admin = await kafka.admin();
    const offsets = await admin.fetchTopicOffsets(`${topic}-dlt`);
    return offsets.reduce((sum, p) => sum + Number(p.high), 0);
  }

  async function createTopics(topic: string, partitions = 1) {
    await kafka.createTopic(topic, partitions);
    await kafka.createTopic(`${topic}-dlt`, 1);
  }

  test('finding 2: a handler that honours ctx.signal at shutdown is no attempt: not dead-lettered, not committed, redelivered', async () => {
    const topic = uniqueName('m-shutdown-signal');
    const groupId = uniqueName('m-shutdown-signal');
    await createTopics(topic);
    recording.behaviour = (payload, ctx) => (payload.seq === 0 ? untilAborted(ctx.signal) : undefined);
    // attempts 1: before the fix the aborted handler was the last attempt, so the message went to the dead letters.
    const { app } = await start(groupId, topic, { retry: { attempts: 1 } });
    await kafka.produceKeyed(topic, 1, () => 'k');
    await waitFor('handler running', 10_000, () => deliveries.length === 1);
    await close(app);
    expect(deliveries[0].aborted).toBe(true);
    expect(await deadLetterCount(topic)).toBe(0);
    expect((await kafka.offsets(groupId, topic))[0].committed).toBe(-1);

    recording.behaviour = () => undefined;
    await start(groupId, topic, { retry: { attempts: 1 } });
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(deliveries.map((d) => [d.seq, d.attempt])).toEqual([
      [0, 1],
      [0, 1],
    ]);
    expect(await deadLetterCount(topic)).toBe(0);
  });

  test('finding 2: a message in its retry backoff at shutdown is redelivered after restart, not dead-lettered', async () => {
    const topic = uniqueName('m-shutdown-backoff');
    const groupId = uniqueName('m-shutdown-backoff');
    await createTopics(topic);
    let failing = true;
    recording.behaviour = () => {
      if (failing) throw new Error('downstream unavailable');
    };
    // A backoff far longer than a close takes on a loaded host: a close that sat it out would show.
    const retry = { attempts: 2, initialDelayMs: 30_000, multiplier: 1, maxDelayMs: 30_000 };
    const { app } = await start(groupId, topic, { retry });
    await kafka.produceKeyed(topic, 1, () => 'k');
    await waitFor('first attempt failed', 10_000, () => deliveries.length === 1);
    expect(await close(app)).toBeLessThan(10_000);
    expect(await deadLetterCount(topic)).toBe(0);
    expect((await kafka.offsets(groupId, topic))[0].committed).toBe(-1);

    failing = false;
    await start(groupId, topic, { retry });
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(deliveries.map((d) => d.seq)).toEqual([0, 0]);
    expect(await deadLetterCount(topic)).toBe(0);
  });

  test('finding 6: stop() during start-up leaves no consumer behind (it neither joins nor consumes later)', async () => {
    const topic = uniqueName('m-start-stop');
    const groupId = uniqueName('m-start-stop');
    await createTopics(topic);
    await kafka.produceKeyed(topic, 5, () => 'k');
    // Closed right after listen(): the member is still connecting or joining.
    const { app } = await startTestApp([recordingFeature(groupId, topic)]);
    await app.close();
    // Longer than a join takes on this broker: a consumer left behind would have joined and consumed by now.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const admin = await kafka.admin();
    const { groups } = await admin.describeGroups([groupId]);
    expect(groups[0].members).toHaveLength(0);
    expect(deliveries).toHaveLength(0);
  });

  test('finding 8: a handler slower than the session timeout keeps its partition: no eviction, no second delivery', async () => {
    const topic = uniqueName('m-slow');
    const groupId = uniqueName('m-slow');
    await createTopics(topic);
    // The handler takes half again the session timeout (shorter than the test tuning's, to halve the wait).
    const consumer = { ...TEST_CONSUMER_TUNING, sessionTimeout: 3_000 };
    recording.behaviour = (payload) =>
      payload.seq === 0
        ? new Promise((resolve) => setTimeout(resolve, consumer.sessionTimeout * 1.5))
        : undefined;
    await start(groupId, topic, { consumer });
    const { members: before } = await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 3, () => 'k');
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);
    const { members: after } = await kafka.waitForStableGroup(groupId, 1);
    expect(after[0].memberId).toBe(before[0].memberId);
    expect(deliveries.map((d) => [d.seq, d.attempt])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
  }, 60_000);

  test('finding 8: past maxProcessingTimeMs ctx.signal is aborted and the delivery counts as a failed attempt', async () => {
    const topic = uniqueName('m-max-processing');
    const groupId = uniqueName('m-max-processing');
    await createTopics(topic);
    recording.behaviour = (_payload, ctx) => (ctx.attempt === 1 ? untilAborted(ctx.signal) : undefined);
    const began = Date.now();
    await start(groupId, topic, {
      maxProcessingTimeMs: 1_500,
      retry: { attempts: 3, initialDelayMs: 100, multiplier: 1, maxDelayMs: 100 },
    });
    await kafka.produceKeyed(topic, 1, () => 'k');
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(deliveries.map((d) => [d.attempt, d.aborted])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(Date.now() - began).toBeGreaterThanOrEqual(1_500);
    expect(await deadLetterCount(topic)).toBe(0);
  });

  test('finding 11: attempt counts and retry backoffs survive rejoins, so a failing message reaches the dead-letter topic on time', async () => {
    const topic = uniqueName('m-attempts');
    const otherTopic = uniqueName('m-attempts-other');
    const groupId = uniqueName('m-attempts');
    await createTopics(topic);
    await kafka.createTopic(otherTopic, 1);
    recording.behaviour = () => {
      throw new Error('always fails');
    };
    // A backoff longer than a join takes: the rejoins come while the partition waits for its next attempt, which
    // must wait the backoff out (as Spring's container re-pauses a paused partition it keeps after a rebalance).
    const backoffMs = 6_000;
    const retry = { attempts: 3, initialDelayMs: backoffMs, multiplier: 1, maxDelayMs: backoffMs };
    await start(groupId, topic, { retry });
    await kafka.produceKeyed(topic, 1, () => 'k');
    await waitFor('attempt 1', 10_000, () => deliveries.length === 1);

    const other = await startTestApp([
      recordingFeature(groupId, otherTopic, { controllers: [OtherTopicController] }),
    ]);
    apps.push(other.app);
    await kafka.waitForStableGroup(groupId, 2);
    await waitFor('attempt 2 after its backoff', 20_000, () => deliveries.length === 2);
    await close(other.app);
    await kafka.waitForStableGroup(groupId, 1);
    await waitFor('attempt 3 after its backoff', 20_000, () => deliveries.length === 3);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);
    // Each retry waited its backoff, although a join (then a leave) resumed every partition meanwhile.
    expect(deliveries[1].at - deliveries[0].at).toBeGreaterThanOrEqual(backoffMs - 50);
    expect(deliveries[2].at - deliveries[1].at).toBeGreaterThanOrEqual(backoffMs - 50);
    expect(await deadLetterCount(topic)).toBe(1);
  });

  test('finding 12: shutdown with no broker reachable ends within shutdownTimeoutMs', async () => {
    const topic = uniqueName('m-no-broker');
    const groupId = uniqueName('m-no-broker');
    // Nothing listens on port 1: every connection is refused, as with a broker that is down.
    const { app } = await startTestApp([recordingFeature(groupId, topic)], {
      brokers: ['127.0.0.1:1'],
      shutdownTimeoutMs: 3_000,
      // About 24 s of connection retries, far more than the 3 s bound and what a close takes on a loaded host.
      clientRetry: { initialRetryTime: 300, maxRetryTime: 2_000, retries: 14 },
    });
    apps.push(app);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await close(app)).toBeLessThan(3_000 + 5_000);
  });
});
