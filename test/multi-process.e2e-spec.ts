import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { flightPosition } from './support/flight-position.js';
import { ServiceProcess } from './support/service-process.js';

function position(i: number, icao24: string) {
  return flightPosition(icao24, `TST${i % 1000}`, { ts: 1_764_236_400_000 + i });
}

describe('two copies of the built service in two processes', () => {
  const kafka = new KafkaTestClient();
  const services: ServiceProcess[] = [];

  afterEach(async () => {
    await Promise.all(services.splice(0).map((s) => s.stop('SIGKILL')));
  });
  afterAll(() => kafka.closeAll());

  test('join the same group, own one partition each of a 2-partition topic, process everything once', async () => {
    const airnavTopic = uniqueName('mp-airnav');
    const flight24Topic = uniqueName('mp-flight24');
    const airnavGroup = uniqueName('mp-airnav');
    await kafka.createTopic(airnavTopic, 2);
    await kafka.createTopic(flight24Topic, 1);
    const env = {
      KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
      AIRNAV_TOPIC: airnavTopic,
      AIRNAV_GROUP_ID: airnavGroup,
      FLIGHT24_TOPIC: flight24Topic,
      FLIGHT24_GROUP_ID: uniqueName('mp-flight24'),
    };

    const first = new ServiceProcess(env);
    services.push(first);
    await first.waitUntilListening();
    await kafka.waitForStableGroup(airnavGroup, 1);

    const joinStarted = Date.now();
    const second = new ServiceProcess(env);
    services.push(second);
    await second.waitUntilListening();
    await kafka.waitForStableGroup(airnavGroup, 2);
    const joinSeconds = (Date.now() - joinStarted) / 1000;

    const icaos = Array.from({ length: 8 }, (_, i) => (0x4b1800 + i).toString(16));
    const producer = await kafka.producer();
    await producer.send({
      topic: airnavTopic,
      acks: -1,
      messages: Array.from({ length: 200 }, (_, i) => ({
        key: icaos[i % 8],
        value: JSON.stringify(position(i, icaos[i % 8])),
      })),
    });
    await waitFor(
      '200 processed across both services',
      30_000,
      () => first.processed.length + second.processed.length >= 200,
    );
    await kafka.waitForCommittedToEnd(airnavGroup, airnavTopic);

    const all = [...first.processed, ...second.processed].filter((p) => p.topic === airnavTopic);
    expect(new Set(all.map((p) => `${p.partition}@${p.offset}`)).size).toBe(200);
    expect(all).toHaveLength(200);
    const firstPartitions = new Set(first.processed.map((p) => p.partition));
    const secondPartitions = new Set(second.processed.map((p) => p.partition));
    expect(firstPartitions.size).toBe(1);
    expect(secondPartitions.size).toBe(1);
    expect([...firstPartitions][0]).not.toBe([...secondPartitions][0]);

    // A graceful leave: SIGTERM, and the remaining member owns the group alone again.
    const leaveStarted = Date.now();
    expect(await second.stop('SIGTERM')).toEqual({ code: null, signal: 'SIGTERM' });
    // The service's session timeout is kafkajs's default 30 s: a regroup well before that means it left the group.
    await kafka.waitForStableGroup(airnavGroup, 1, 10_000);
    const leaveSeconds = (Date.now() - leaveStarted) / 1000;
    process.stdout.write(
      `rebalance timings: member join ${joinSeconds.toFixed(2)} s (incl. process start), graceful leave ${leaveSeconds.toFixed(2)} s\n`,
    );
  });
});
