/**
 * Batch handlers (`@KafkaHandler(topic, { batch: true })`) against a real broker: every message handled and
 * committed once, `maxBatchSize` bounds each call, a KafkaBatchFailedError at index k commits the k messages before
 * it and redelivers from k with the right attempt counts, any other error retries the whole call, per-element
 * validation dead-letters only the bad element, and heartbeats go on during a call longer than the session timeout.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { Ctx, Payload } from '@nestjs/microservices';
import { IsInt, IsString, Max, Min } from 'class-validator';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DLT_HEADERS,
  KafkaBatchContext,
  KafkaBatchFailedError,
  KafkaGroups,
  KafkaHandler,
  KafkaModule,
} from 'nest-kafka-groups';
import { TrackArchive } from '../src/flights/tracks/track-archive.js';
import { TracksModule } from '../src/flights/tracks/tracks.module.js';
import { KafkaTestClient, TEST_CONSUMER_TUNING, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

class ReadingDto {
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  seq!: number;

  @IsString()
  key!: string;
}

interface Call {
  partition: number;
  offsets: string[];
  keys: (string | undefined)[];
  seqs: number[];
  attempt: number;
  /** Every element arrived as a ReadingDto instance (the `items` pipes transformed it). */
  instances: boolean;
}

const calls: Call[] = [];
let behaviour: (items: ReadingDto[], ctx: KafkaBatchContext) => Promise<void> | void = () => undefined;

function record(items: ReadingDto[], ctx: KafkaBatchContext): Promise<void> | void {
  calls.push({
    partition: ctx.partition,
    offsets: ctx.records.map((r) => r.offset),
    keys: ctx.records.map((r) => r.key),
    seqs: items.map((item) => item.seq),
    attempt: ctx.attempt,
    instances: items.every((item) => item instanceof ReadingDto),
  });
  return behaviour(items, ctx);
}

const MAX_BATCH = 50;

@Controller()
class BatchController {
  @KafkaHandler('${TOPIC}', { batch: true, maxBatchSize: MAX_BATCH })
  handle(@Payload() items: ReadingDto[], @Ctx() ctx: KafkaBatchContext) {
    return record(items, ctx);
  }
}

@Controller()
class ValidatedBatchController {
  @KafkaHandler('${TOPIC}', { batch: true, items: ReadingDto })
  handle(@Payload() items: ReadingDto[], @Ctx() ctx: KafkaBatchContext) {
    return record(items, ctx);
  }
}

function feature(controller: Function, groupId: string, topic: string, extra: object = {}) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, ...extra })],
    controllers: [controller as never],
  })
  class BatchModule {}
  return BatchModule;
}

/** Seqs handled by a call that succeeded (the ones before a KafkaBatchFailedError's index included). */
function seqCounts(handled: number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const seq of handled) counts.set(seq, (counts.get(seq) ?? 0) + 1);
  return counts;
}

describe('batch handlers', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    calls.length = 0;
    behaviour = () => undefined;
  });
  afterAll(() => kafka.closeAll());

  async function start(
    controller: Function,
    groupId: string,
    topic: string,
    featureExtra: object = {},
    root: object = {},
  ) {
    const started = await startTestApp([feature(controller, groupId, topic, featureExtra)], root);
    apps.push(started.app);
    await kafka.waitForStableGroup(groupId, 1);
    return started;
  }

  test('every message reaches one call, in offset order per partition, is committed once; maxBatchSize bounds each call', async () => {
    const topic = uniqueName('batch-all');
    const groupId = uniqueName('batch-all');
    await kafka.createTopic(topic, 3);
    // Produced before the group starts, so the first fetch of each partition holds more than maxBatchSize.
    await kafka.produceKeyed(topic, 600, (i) => `k${i % 12}`);
    await start(BatchController, groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);

    const seqs = calls.flatMap((call) => call.seqs);
    expect(seqs).toHaveLength(600);
    expect(new Set(seqs).size).toBe(600);
    const sizes = calls.map((call) => call.seqs.length);
    expect(Math.max(...sizes)).toBe(MAX_BATCH);
    expect(calls.every((call) => call.attempt === 1)).toBe(true);
    for (let partition = 0; partition < 3; partition++) {
      const offsets = calls.filter((c) => c.partition === partition).flatMap((c) => c.offsets.map(Number));
      expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => i));
    }
    // The context describes each element: its record's key is the key the element was produced with.
    for (const call of calls) {
      expect(call.keys).toEqual(call.seqs.map((seq) => `k${seq % 12}`));
    }
  });

  test('KafkaBatchFailedError at index k commits the k messages before it and redelivers from k with attempt 2', async () => {
    const topic = uniqueName('batch-failed-at');
    const groupId = uniqueName('batch-failed-at');
    await kafka.createTopic(topic, 1);
    await kafka.produceKeyed(topic, 30, () => 'k');
    let failedAt: number | undefined;
    behaviour = (items, ctx) => {
      const k = items.findIndex((item) => item.seq === 17);
      if (k >= 0 && ctx.attempt === 1) {
        failedAt = k;
        throw new KafkaBatchFailedError(k, new Error('seq 17 is not ready yet'));
      }
    };
    // A backoff long enough to see the commit of the messages before k while the partition waits.
    await start(BatchController, groupId, topic, {
      retry: { attempts: 3, initialDelayMs: 3_000, multiplier: 1, maxDelayMs: 3_000 },
    });
    await waitFor('the failing call', 20_000, () => failedAt !== undefined);
    const failing = calls.find((call) => call.seqs.includes(17))!;
    const committedDuringBackoff = await waitFor('the commit before seq 17', 2_500, async () => {
      const [offsets] = await kafka.offsets(groupId, topic);
      return offsets.committed === 17 ? offsets.committed : undefined;
    });
    expect(committedDuringBackoff).toBe(17);
    expect(calls.some((call) => call.attempt > 1)).toBe(false);
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);

    const retried = calls.filter((call) => call.attempt > 1);
    expect(retried).toHaveLength(1);
    expect(retried[0].offsets[0]).toBe('17');
    expect(retried[0].attempt).toBe(2);
    // The messages before k reached the handler once; 17 and the rest of the failed call twice (their first call
    // failed); nothing is lost.
    const counts = seqCounts(calls.flatMap((call) => call.seqs));
    const failedCall = new Set(failing.seqs.slice(failedAt));
    for (let seq = 0; seq < 30; seq++)
      expect([seq, counts.get(seq)]).toEqual([seq, failedCall.has(seq) ? 2 : 1]);
  });

  test('a message that keeps failing at its index is dead-lettered alone after its attempts; the others are handled', async () => {
    const topic = uniqueName('batch-failed-for-good');
    const groupId = uniqueName('batch-failed-for-good');
    await kafka.createTopic(topic, 1);
    await kafka.produceKeyed(topic, 20, (i) => `k${i}`);
    class ReadingRejected extends Error {}
    behaviour = (items) => {
      const k = items.findIndex((item) => item.seq === 5);
      if (k >= 0) throw new KafkaBatchFailedError(k, new ReadingRejected('seq 5 never passes'));
    };
    await start(BatchController, groupId, topic, {
      retry: { attempts: 3, initialDelayMs: 100, multiplier: 1, maxDelayMs: 100 },
    });
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);

    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    const h = dead.headers!;
    expect(dead.key!.toString()).toBe('k5');
    expect((h[DLT_HEADERS.originalOffset] as Buffer).readBigInt64BE()).toBe(5n);
    expect(h[DLT_HEADERS.originalTopic]!.toString()).toBe(topic);
    expect(h[DLT_HEADERS.originalConsumerGroup]!.toString()).toBe(groupId);
    expect(h[DLT_HEADERS.exceptionFqcn]!.toString()).toBe('ReadingRejected');
    expect(h[DLT_HEADERS.exceptionMessage]!.toString()).toBe('seq 5 never passes');
    // Three calls started at offset 5 (attempts 1, 2, 3); every other seq was handled by a call that succeeded.
    expect(calls.filter((call) => call.offsets[0] === '5').map((call) => call.attempt)).toEqual([2, 3]);
    expect(calls.filter((call) => call.seqs.includes(5)).map((call) => call.attempt)).toEqual([1, 2, 3]);
    const succeeded = calls.filter((call) => !call.seqs.includes(5)).flatMap((call) => call.seqs);
    const beforeFive = calls.filter((call) => call.seqs.includes(5) && call.attempt === 1)[0];
    const handled = [...succeeded, ...beforeFive.seqs.slice(0, beforeFive.seqs.indexOf(5))];
    expect(handled.sort((a, b) => a - b)).toEqual([
      0,
      1,
      2,
      3,
      4,
      ...Array.from({ length: 14 }, (_, i) => i + 6),
    ]);
  });

  test('any other error retries the whole call; after the last attempt each message of the call is dead-lettered', async () => {
    const topic = uniqueName('batch-whole');
    const groupId = uniqueName('batch-whole');
    await kafka.createTopic(topic, 1);
    await kafka.produceKeyed(topic, 8, (i) => `k${i}`);
    await kafka.produceKeyed(
      topic,
      1,
      () => 'poison',
      () => ({ poison: true }),
    );
    // seq 0 of the second send is the poison (offset 8); the call holding it fails as a whole, every time.
    behaviour = (items, ctx) => {
      if (ctx.records.some((r) => r.key === 'poison'))
        throw new Error('the downstream bulk insert refused the batch');
    };
    await start(BatchController, groupId, topic, {
      retry: { attempts: 2, initialDelayMs: 100, multiplier: 1, maxDelayMs: 100 },
    });
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);

    const failing = calls.filter((call) => call.keys.includes('poison'));
    expect(failing.map((call) => call.attempt)).toEqual([1, 2]);
    expect(failing[1].offsets).toEqual(failing[0].offsets);
    const dead = await kafka.readMessages(`${topic}-dlt`, failing[0].offsets.length);
    expect(
      dead.map((m) => (m.headers![DLT_HEADERS.originalOffset] as Buffer).readBigInt64BE().toString()),
    ).toEqual(failing[0].offsets);
    expect(
      dead.every(
        (m) =>
          m.headers![DLT_HEADERS.exceptionMessage]!.toString() ===
          'the downstream bulk insert refused the batch',
      ),
    ).toBe(true);
    // Each offset either reached a call that succeeded or the dead-letter topic, never both.
    const handled = calls.filter((call) => !call.keys.includes('poison')).flatMap((call) => call.offsets);
    expect([...handled, ...failing[0].offsets].map(Number).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 9 }, (_, i) => i),
    );
  });

  test('after KafkaGroups.stop and start, a failing call still counts its attempts and reaches the dead-letter topic', async () => {
    const topic = uniqueName('batch-restarted');
    const groupId = uniqueName('batch-restarted');
    await kafka.createTopic(topic, 1);
    behaviour = (_, ctx) => {
      if (ctx.records.some((r) => r.key === 'poison')) throw new Error('refused after the restart');
    };
    const { app } = await start(BatchController, groupId, topic, {
      retry: { attempts: 2, initialDelayMs: 100, multiplier: 1, maxDelayMs: 100 },
    });
    const groups = app.get(KafkaGroups);
    await groups.stop(groupId);
    await groups.start(groupId);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 1, () => 'poison');
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);

    expect(calls.map((call) => call.attempt)).toEqual([1, 2]);
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.headers![DLT_HEADERS.exceptionMessage]!.toString()).toBe('refused after the restart');
  });

  test('per-element validation: an invalid or undecodable element is dead-lettered alone, the rest are handled as DTOs', async () => {
    const topic = uniqueName('batch-items');
    const groupId = uniqueName('batch-items');
    await kafka.createTopic(topic, 1);
    const producer = await kafka.producer();
    await producer.send({
      topic,
      acks: -1,
      messages: [
        ...Array.from({ length: 4 }, (_, i) => ({
          key: `k${i}`,
          value: JSON.stringify({ seq: i, key: `k${i}` }),
        })),
        { key: 'bad', value: JSON.stringify({ seq: -1, key: 'bad' }) },
        ...Array.from({ length: 3 }, (_, i) => ({
          key: `k${i + 5}`,
          value: JSON.stringify({ seq: i + 5, key: `k${i + 5}` }),
        })),
        { key: 'garbled', value: '{"seq": 9,' },
        { key: 'k9', value: JSON.stringify({ seq: 9, key: 'k9' }) },
      ],
    });
    await start(ValidatedBatchController, groupId, topic);
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);

    expect(calls.flatMap((call) => call.seqs)).toEqual([0, 1, 2, 3, 5, 6, 7, 9]);
    expect(calls.every((call) => call.instances && call.attempt === 1)).toBe(true);
    const dead = await kafka.readMessages(`${topic}-dlt`, 2);
    const byKey = new Map(dead.map((m) => [m.key!.toString(), m.headers!]));
    expect((byKey.get('bad')![DLT_HEADERS.originalOffset] as Buffer).readBigInt64BE()).toBe(4n);
    expect(byKey.get('bad')![DLT_HEADERS.exceptionMessage]!.toString()).toBe('seq must not be less than 0');
    expect(byKey.get('bad')![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('BadRequestException');
    expect((byKey.get('garbled')![DLT_HEADERS.originalOffset] as Buffer).readBigInt64BE()).toBe(8n);
    expect(byKey.get('garbled')![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('KafkaPayloadDecodeError');
  });

  test('a call longer than the session timeout: heartbeats go on, same member, nothing redelivered', async () => {
    const topic = uniqueName('batch-long-call');
    const groupId = uniqueName('batch-long-call');
    await kafka.createTopic(topic, 1);
    await kafka.produceKeyed(topic, 10, () => 'k');
    // The call takes half again the session timeout (shorter than the test tuning's, to halve the wait).
    const consumer = { ...TEST_CONSUMER_TUNING, sessionTimeout: 3_000 };
    const callMs = consumer.sessionTimeout * 1.5;
    behaviour = (_, ctx) => (ctx.attempt === 1 && calls.length === 1 ? sleep(callMs) : undefined);
    const { server } = await start(BatchController, groupId, topic, {}, { consumer });
    const memberId = server.groups[0].members[0].memberId;
    await kafka.waitForCommittedToEnd(groupId, topic, 30_000);
    const group = await kafka.waitForStableGroup(groupId, 1);

    expect(group.members.map((m) => m.memberId)).toEqual([memberId]);
    expect(calls.flatMap((call) => call.seqs)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  test("the example service's tracks module: one batch handler over both feeds builds the tracks, an invalid position goes to its own dead-letter topic", async () => {
    const airnav = uniqueName('tracks-airnav');
    const flight24 = uniqueName('tracks-flight24');
    const groupId = uniqueName('tracks');
    await kafka.createTopic(airnav, 1);
    await kafka.createTopic(flight24, 1);
    const position = (icao24: string, ts: number, lat = 50) =>
      JSON.stringify({ icao24, callsign: 'DLH1', lat, lon: 8, altitude: 1000, speed: 200, heading: 90, ts });
    const producer = await kafka.producer();
    await producer.send({
      topic: airnav,
      acks: -1,
      messages: [1, 2, 3].map((ts) => ({ key: 'abc123', value: position('abc123', ts) })),
    });
    await producer.send({
      topic: flight24,
      acks: -1,
      messages: [
        ...[1, 2].map((ts) => ({ key: 'abc124', value: position('abc124', ts) })),
        { key: 'def456', value: position('def456', 1, 95) },
      ],
    });
    const config = ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      load: [
        () => ({
          TRACKS_GROUP_ID: groupId,
          AIRNAV_TOPIC: airnav,
          FLIGHT24_TOPIC: flight24,
          FLIGHTS_MAX_AIRCRAFT: 100,
        }),
      ],
    });
    const { app } = await startTestApp([TracksModule], {}, [config as never]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.waitForCommittedToEnd(groupId, airnav);
    await kafka.waitForCommittedToEnd(groupId, flight24);

    const archive = app.get(TrackArchive);
    expect(archive.track('abc123')!.map((p) => [p.ts, p.source])).toEqual([
      [1, airnav],
      [2, airnav],
      [3, airnav],
    ]);
    expect(archive.track('abc124')!.map((p) => [p.ts, p.source])).toEqual([
      [1, flight24],
      [2, flight24],
    ]);
    expect(archive.track('def456')).toBeUndefined();
    const [dead] = await kafka.readMessages(`${flight24}-tracks-dlt`, 1);
    expect(dead.key!.toString()).toBe('def456');
    expect(dead.headers![DLT_HEADERS.exceptionMessage]!.toString()).toBe('lat must not be greater than 90');
  });
});
