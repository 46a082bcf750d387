import { describe, expect, test } from '@jest/globals';
import { expectErrorLines } from './support/error-lines.js';
import { Controller } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { IsInt, IsString, Min } from 'class-validator';
import { DLT_HEADERS, KafkaGroupContext, KafkaHandler, KafkaNonRetryableError } from 'nest-kafka-groups';
import { uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';
import { record, recording, recordingFeature, recordingSuite } from './support/recording-feature.js';

class ReadingDto {
  @IsInt()
  @Min(0)
  seq!: number;

  @IsString()
  key!: string;
}

const { deliveries } = recording;

class PermanentFailure extends KafkaNonRetryableError {}

@Controller()
class ValidatingController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: ReadingDto, @Ctx() ctx: KafkaGroupContext) {
    return record(payload, ctx);
  }
}

const FAST_RETRY = { attempts: 3, initialDelayMs: 100, multiplier: 2, maxDelayMs: 400 };

describe('delivery guarantees', () => {
  const { kafka, apps } = recordingSuite();

  async function start(groupId: string, topic: string, root: object = {}, featureExtra: object = {}) {
    const started = await startTestApp(
      [recordingFeature(groupId, topic, { controllers: [ValidatingController], ...featureExtra })],
      {
        retry: FAST_RETRY,
        ...root,
      },
    );
    apps.push(started.app);
    await kafka.waitForStableGroup(groupId, 1);
    return started;
  }

  test('a failing handler is retried with backoff and then succeeds; the handler sees the attempt number', async () => {
    const topic = uniqueName('retry-ok');
    const groupId = uniqueName('retry-ok');
    await kafka.createTopic(topic, 1);
    recording.behaviour = (_, ctx) => {
      if (ctx.attempt < 3) throw new Error(`transient failure, attempt ${ctx.attempt}`);
    };
    await start(groupId, topic);
    await kafka.produceKeyed(topic, 1, () => 'k');
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);
    // Exponential backoff between the attempts: 100 ms, then 200 ms (FAST_RETRY), not an immediate redelivery.
    const gaps = [deliveries[1].at - deliveries[0].at, deliveries[2].at - deliveries[1].at];
    expect(gaps[0]).toBeGreaterThanOrEqual(FAST_RETRY.initialDelayMs - 5);
    expect(gaps[1]).toBeGreaterThanOrEqual(FAST_RETRY.initialDelayMs * FAST_RETRY.multiplier - 5);
    expect(gaps[1]).toBeGreaterThan(gaps[0]);
  });

  test('retries exhausted: the message goes to <topic>-dlt with Spring headers, then the offset is committed', async () => {
    const topic = uniqueName('exhaust');
    const groupId = uniqueName('exhaust');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    recording.behaviour = () => {
      throw new TypeError('handler always fails');
    };
    await start(groupId, topic);
    const producer = await kafka.producer();
    await producer.send({
      topic,
      messages: [
        {
          key: 'aircraft-1',
          value: JSON.stringify({ seq: 0, key: 'aircraft-1' }),
          headers: { trace: 'abc' },
        },
      ],
    });
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);

    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    const h = dead.headers!;
    expect(dead.key!.toString()).toBe('aircraft-1');
    expect(JSON.parse(dead.value!.toString())).toEqual({ seq: 0, key: 'aircraft-1' });
    expect(h.trace!.toString()).toBe('abc');
    expect(h[DLT_HEADERS.originalTopic]!.toString()).toBe(topic);
    expect((h[DLT_HEADERS.originalPartition] as Buffer).readInt32BE()).toBe(0);
    expect((h[DLT_HEADERS.originalPartition] as Buffer).length).toBe(4);
    expect((h[DLT_HEADERS.originalOffset] as Buffer).readBigInt64BE()).toBe(0n);
    const timestamp = Number((h[DLT_HEADERS.originalTimestamp] as Buffer).readBigInt64BE());
    expect(Math.abs(timestamp - Date.now())).toBeLessThan(60_000);
    expect(h[DLT_HEADERS.originalConsumerGroup]!.toString()).toBe(groupId);
    expect(h[DLT_HEADERS.exceptionFqcn]!.toString()).toBe('TypeError');
    expect(h[DLT_HEADERS.exceptionMessage]!.toString()).toBe('handler always fails');
    expect(h[DLT_HEADERS.exceptionStacktrace]!.toString()).toContain('TypeError: handler always fails');
  });

  test('poison pill, failed validation and a non-retryable error go straight to the dead-letter topic', async () => {
    const topic = uniqueName('poison');
    const groupId = uniqueName('poison');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    recording.behaviour = (payload) => {
      if (payload.seq === 2) throw new PermanentFailure('seq 2 can never succeed');
    };
    const { server } = await start(groupId, topic);
    const producer = await kafka.producer();
    await producer.send({
      topic,
      messages: [
        { key: 'a', value: '{not json' },
        { key: 'b', value: JSON.stringify({ seq: 'not-a-number', key: 'b' }) },
        { key: 'c', value: JSON.stringify({ seq: 2, key: 'c' }) },
        { key: 'd', value: JSON.stringify({ seq: 3, key: 'd' }) },
      ],
    });
    await kafka.waitForCommittedToEnd(groupId, topic);
    const dead = await kafka.readMessages(`${topic}-dlt`, 3);
    const byKey = new Map(dead.map((m) => [m.key!.toString(), m]));
    expect(byKey.get('a')!.value!.toString()).toBe('{not json');
    expect(byKey.get('a')!.headers![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('KafkaPayloadDecodeError');
    expect(byKey.get('b')!.headers![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('BadRequestException');
    expect(byKey.get('c')!.headers![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('PermanentFailure');
    // No retries for any of them: seq 2 reached the handler exactly once, 'b' never passed validation, and the
    // member counted one failure each for 'a' (not JSON), 'b' and 'c', where retries would count 3 each.
    expect(deliveries.map((d) => d.seq)).toEqual([2, 3]);
    expect(server.groups[0].members[0].counts).toEqual({ processed: 1, failed: 3, deadLettered: 3 });
  });

  test('a failed dead-letter write keeps the offset uncommitted and the partition waits', async () => {
    // A dead-letter topic that does not exist stops the partition until it can be written: an ERROR by design.
    expectErrorLines(/partition stopped until it can be written/);
    const topic = uniqueName('dlt-missing');
    const groupId = uniqueName('dlt-missing');
    await kafka.createTopic(topic, 1);
    recording.behaviour = (payload) => {
      if (payload.seq === 1) throw new PermanentFailure('always');
    };
    // The dead-letter topic is neither created nor checked at start-up, so that the write meets it missing.
    const { server } = await start(groupId, topic, {
      deadLetter: { timeoutMs: 1_500, retryDelayMs: 300 },
      topics: { create: false, check: false },
    });
    await kafka.produceKeyed(topic, 3, (i) => `k${i}`);
    await waitFor(
      'seq 0 committed',
      20_000,
      async () => (await kafka.offsets(groupId, topic))[0].committed === 1,
    );
    // The dead-letter topic does not exist (auto-creation is off): the write fails and stops the partition, and
    // offset 1 stays uncommitted while the write is retried.
    const member = server.groups[0].members[0];
    await waitFor(
      'the partition stopped by the failed write',
      20_000,
      () => member.stoppedPartitions.size === 1,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await kafka.offsets(groupId, topic))[0].committed).toBe(1);
    expect(deliveries.map((d) => d.seq)).toEqual([0, 1]);

    await kafka.createTopic(`${topic}-dlt`, 1);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(deliveries.map((d) => d.seq)).toEqual([0, 1, 2]);
    expect((await kafka.readMessages(`${topic}-dlt`, 1))[0].key!.toString()).toBe('k1');
  });

  test('with dead letters off, an exhausted message stops its partition and nothing is skipped', async () => {
    // Stopping a partition is an ERROR by design: provoked here.
    expectErrorLines(/dead letters are off: partition stopped/);
    const topic = uniqueName('no-dlt');
    const groupId = uniqueName('no-dlt');
    await kafka.createTopic(topic, 2);
    recording.behaviour = (payload) => {
      if (payload.seq === 0) throw new Error('stuck');
    };
    const { server } = await start(groupId, topic, { deadLetter: { enabled: false } });
    await kafka.produceKeyed(topic, 40, (i) => `k${i % 4}`);
    const member = server.groups[0].members[0];
    await waitFor('partition stopped', 20_000, () => member.stoppedPartitions.size === 1);
    const [stopped] = [...member.stoppedPartitions.keys()];
    const stoppedPartition = Number(stopped.split(':').pop());
    await waitFor('the other partition done', 20_000, async () => {
      const offsets = await kafka.offsets(groupId, topic);
      return (
        offsets.find((o) => o.partition !== stoppedPartition)!.committed ===
        offsets.find((o) => o.partition !== stoppedPartition)!.end
      );
    });
    const stuck = (await kafka.offsets(groupId, topic)).find((o) => o.partition === stoppedPartition)!;
    expect(stuck.committed).toBeLessThan(stuck.end);
    expect(deliveries.filter((d) => d.seq === 0)).toHaveLength(FAST_RETRY.attempts);
    // Nothing behind the stuck message on its partition was handled (nothing skipped past it).
    const stuckSeqs = deliveries.filter((d) => d.partition === stoppedPartition).map((d) => d.seq);
    expect(new Set(stuckSeqs)).toEqual(new Set([0]));
  });

  test('while one partition backs off, the other partitions keep flowing', async () => {
    const topic = uniqueName('backoff-flow');
    const groupId = uniqueName('backoff-flow');
    await kafka.createTopic(topic, 3);
    await kafka.createTopic(`${topic}-dlt`, 1);
    let slowKeyPartition: number | undefined;
    recording.behaviour = (payload, ctx) => {
      if (payload.seq === 0) {
        slowKeyPartition = ctx.partition;
        throw new Error('backing off');
      }
    };
    await start(groupId, topic, {
      // One backoff: the check is what flows during it.
      retry: { attempts: 2, initialDelayMs: 3_000, multiplier: 1, maxDelayMs: 3_000 },
    });
    await kafka.produceKeyed(topic, 150, (i) => `k${i % 15}`);
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);
    // Every message of the other partitions was handled, once, before seq 0's second attempt: they flowed during its
    // backoff (the order of the calls, not a bound on elapsed time).
    const retried = deliveries.filter((d) => d.seq === 0);
    expect(retried.map((d) => d.attempt)).toEqual([1, 2]);
    const others = deliveries.filter((d) => d.partition !== slowKeyPartition);
    const otherRecords = (await kafka.offsets(groupId, topic))
      .filter((o) => o.partition !== slowKeyPartition)
      .reduce((sum, o) => sum + o.end, 0);
    expect(others).toHaveLength(otherRecords);
    expect(others.filter((d) => d.at > retried[1].at)).toEqual([]);
  });

  test('graceful shutdown lets the in-flight handler finish, commits it and leaves the group at once', async () => {
    const topic = uniqueName('shutdown');
    const groupId = uniqueName('shutdown');
    await kafka.createTopic(topic, 1);
    let inFlight = false;
    let finished = false;
    recording.behaviour = async (payload) => {
      if (payload.seq === 0) {
        inFlight = true;
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        finished = true;
      }
    };
    const { app } = await start(groupId, topic);
    await kafka.produceKeyed(topic, 1, () => 'k');
    await waitFor('handler running', 10_000, () => inFlight);
    apps.pop();
    await app.close();
    // The handler's work after its wait ran to the end before close() resolved.
    expect(finished).toBe(true);
    expect(deliveries).toHaveLength(1);
    expect((await kafka.offsets(groupId, topic))[0].committed).toBe(1);
    const admin = await kafka.admin();
    const { groups } = await admin.describeGroups([groupId]);
    expect(groups[0].members).toHaveLength(0);
  });
});
