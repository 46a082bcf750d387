/**
 * KafkaProducer replaces its kafkajs producer after the broker refused a sequence number (kafkajs#598). The replaced
 * producer's sends still retrying at that moment must not connect it again: its sockets would stay open after the
 * application closed. Sockets are counted from /proc (this process's TCP connections to the test broker).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { KafkaGroupsServer, KafkaProducer, KafkaProducerError } from 'nest-kafka-groups';
import { KafkaTestClient, testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';
import { recordingFeature, resetRecording } from './support/recording-feature.js';

/** This process's established TCP connections to `port` on 127.0.0.1 (its socket inodes found in /proc/net/tcp). */
function connectionsTo(port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) inodes.add(match[1]);
    } catch {
      // The fd closed meanwhile.
    }
  }
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[2] === remote && fields[3] === '01' && inodes.has(fields[9])).length;
}

const brokerPort = Number(testBrokers()[0].split(':')[1]);

/** What a send that failed with a lost sequence calls the replacement with. */
const lostSequence = Object.assign(new Error('The broker received an out of order sequence number'), {
  type: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
});

/** The replaceable producer inside KafkaProducer and the dead-letter publisher (producer/replaceable-producer.ts). */
interface Replaceable {
  current: object;
  replace(failed: object, error: unknown): void;
}

describe('a producer replaced after a lost sequence leaves no connection behind', () => {
  const kafka = new KafkaTestClient();
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
    resetRecording();
  });
  afterAll(() => kafka.closeAll());

  test('KafkaProducer: a send of the replaced producer that was retrying does not connect it again', async () => {
    const topic = uniqueName('replaced');
    // Never created (topic creation is off): kafkajs retries UNKNOWN_TOPIC_OR_PARTITION until its retries run out.
    const missing = uniqueName('replaced-missing');
    await kafka.createTopic(topic, 1);
    const before = connectionsTo(brokerPort);

    ({ app } = await startTestApp([], {
      clientRetry: { initialRetryTime: 300, maxRetryTime: 1_000, retries: 6 },
    }));
    const producer = app.get(KafkaProducer);
    await producer.send(topic, { key: 'a', value: { seq: 0 } });
    const connected = connectionsTo(brokerPort);

    // Retrying while the producer is replaced (it fails for good after its retries).
    const retrying = producer.send(missing, { key: 'b', value: { seq: 1 } }).then(
      () => 'sent',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    // What a send that failed with a lost sequence calls. On a real broker the carried send() renews the producer id
    // itself; a lost sequence reaches KafkaProducer only once the send's retries ran out (`clientRetry.retries: 0`,
    // say), which leaves no other send retrying: the replacement is called as a send that failed calls it.
    const internals = (producer as unknown as { producer: Replaceable }).producer;
    internals.replace(internals.current, lostSequence);

    expect(await retrying).toBeInstanceOf(KafkaProducerError);
    // The new producer, settled: as many connections as one producer had before the replacement.
    await producer.send(topic, { key: 'd', value: { seq: 3 } });
    expect(connectionsTo(brokerPort)).toBeLessThanOrEqual(connected);

    await app.close();
    app = undefined;
    await waitFor('the application closed its connections', 5_000, () => connectionsTo(brokerPort) <= before);
    expect(connectionsTo(brokerPort)).toBe(before);
  }, 60_000);

  test('the dead-letter producer: a write of the replaced producer that was retrying does not connect it again', async () => {
    const topic = uniqueName('dlt-replaced');
    const groupId = uniqueName('dlt-replaced');
    const missing = uniqueName('dlt-replaced-missing');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const before = connectionsTo(brokerPort);

    ({ app } = await startTestApp([recordingFeature(groupId, topic)], {
      clientRetry: { initialRetryTime: 300, maxRetryTime: 1_000, retries: 6 },
      topics: { create: false },
    }));
    await kafka.waitForStableGroup(groupId, 1);
    // The group's dead-letter producer, driven as its writes drive it (the group's handler never fails here).
    const publisher = (app.get(KafkaGroupsServer) as unknown as { deadLetters: object }).deadLetters as {
      producer: Replaceable;
      send(topic: string, record: { key: string; value: string }, timeoutMs: number): Promise<void>;
    };
    await publisher.send(`${topic}-dlt`, { key: 'a', value: 'a' }, 10_000);

    const retrying = publisher.send(missing, { key: 'b', value: 'b' }, 10_000).then(
      () => 'sent',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    publisher.producer.replace(publisher.producer.current, lostSequence);
    expect(await retrying).toBeInstanceOf(Error);
    await publisher.send(`${topic}-dlt`, { key: 'c', value: 'c' }, 10_000);

    await app.close();
    app = undefined;
    await waitFor('the application closed its connections', 5_000, () => connectionsTo(brokerPort) <= before);
    expect(connectionsTo(brokerPort)).toBe(before);
  }, 60_000);
});
