/**
 * The example service's operational endpoints over real HTTP against a real broker: GET /kafka/groups,
 * GET /metrics, GET /health (down while the broker is stopped, up again after it returns).
 *
 * The app is the example's own modules (flight topics created at start, airnav and flight24 groups, observability
 * endpoints) with test client tuning, on topics and groups of its own, 2 partitions, 2 members per group.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type INestApplication, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import kafkajs from 'kafkajs';
import request from 'supertest';
import {
  type LocalSettings,
  localSettings,
  startBroker,
  startBrokerOnSameData,
  stopBroker,
  stopBrokerKeepData,
} from '../scripts/kafka-local-lib.mjs';
import { validateEnvironment } from '../src/config/environment.js';
import { AirnavModule } from '../src/flights/airnav/airnav.module.js';
import { FlightSimulator } from '../src/flights/feed/flight-simulator.js';
import { Flight24Module } from '../src/flights/flight24/flight24.module.js';
import type { KafkaGroupStatus } from 'nest-kafka-groups';
import { ObservabilityModule } from '../src/observability/observability.module.js';
import { testBrokers, KafkaTestClient, TEST_RETRY, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { expectErrorLines } from './support/error-lines.js';
import { freePort, javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

const { Kafka, Partitioners, logLevel } = kafkajs;
const PARTITIONS = 2;

interface ServiceNames {
  airnavTopic: string;
  flight24Topic: string;
  airnavGroup: string;
  flight24Group: string;
}

function serviceNames(prefix: string): ServiceNames {
  return {
    airnavTopic: uniqueName(`${prefix}-airnav`),
    flight24Topic: uniqueName(`${prefix}-flight24`),
    airnavGroup: uniqueName(`${prefix}-airnav-group`),
    flight24Group: uniqueName(`${prefix}-flight24-group`),
  };
}

/** The example service's modules on `brokers`, listening on an ephemeral HTTP port. */
async function startService(
  names: ServiceNames,
  brokers: string[],
): Promise<{ app: INestApplication; url: string }> {
  const saved = { ...process.env };
  const restoreEnv = () => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  };
  Object.assign(process.env, {
    KAFKA_BROKERS: brokers.join(','),
    AIRNAV_TOPIC: names.airnavTopic,
    FLIGHT24_TOPIC: names.flight24Topic,
    AIRNAV_GROUP_ID: names.airnavGroup,
    FLIGHT24_GROUP_ID: names.flight24Group,
    KAFKA_TOPIC_PARTITIONS: String(PARTITIONS),
    KAFKA_HEALTH_TIMEOUT_MS: '2000',
    FEED_ENABLED: 'false',
  });
  try {
    // validate() runs now, on the variables above; ConfigModule also copies its defaults into process.env.
    @Module({
      imports: [ConfigModule.forRoot({ isGlobal: true, validate: validateEnvironment, ignoreEnvFile: true })],
    })
    class TestConfigModule {}

    const { app } = await startTestApp(
      [AirnavModule, Flight24Module],
      { brokers, concurrency: 2, clientRetry: TEST_RETRY, topics: { create: true, partitions: PARTITIONS } },
      [TestConfigModule, ObservabilityModule],
    );
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    return { app, url };
  } finally {
    restoreEnv();
  }
}

async function groupsOf(url: string): Promise<KafkaGroupStatus[]> {
  const response = await request(url).get('/kafka/groups').expect(200);
  return (response.body as { groups: KafkaGroupStatus[] }).groups;
}

/** Waits until GET /kafka/groups shows `members` joined members in `groupId`, each with its partitions. */
async function waitForJoinedMembers(url: string, groupId: string, members: number, timeoutMs = 30_000) {
  return waitFor(`${members} joined member(s) of ${groupId} in GET /kafka/groups`, timeoutMs, async () => {
    const group = (await groupsOf(url)).find((g) => g.groupId === groupId);
    const joined = group?.members.filter((m) => m.state === 'joined') ?? [];
    const assigned = joined.flatMap((m) => Object.values(m.assignment).flat());
    return joined.length === members && assigned.length === PARTITIONS && group!.state === 'Stable'
      ? group
      : undefined;
  });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function sum(samples: Sample[], name: string, labels: Record<string, string>): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

function testKafkaOn(brokers: string) {
  return new Kafka({
    clientId: 'e2e-outage',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    retry: TEST_RETRY,
  }).producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: TEST_RETRY,
  });
}

describe('the example service over HTTP', () => {
  const kafka = new KafkaTestClient();
  const names = serviceNames('svc');
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startService(names, testBrokers()));
    await waitForJoinedMembers(url, names.airnavGroup, 2);
    await waitForJoinedMembers(url, names.flight24Group, 2);
  });

  afterAll(async () => {
    await app?.close();
    await kafka.closeAll();
  });

  test('the service created its topics and dead-letter topics with KAFKA_TOPIC_PARTITIONS partitions', async () => {
    const admin = await kafka.admin();
    const topics = [
      names.airnavTopic,
      `${names.airnavTopic}-dlt`,
      names.flight24Topic,
      `${names.flight24Topic}-dlt`,
    ];
    const { topics: metadata } = await admin.fetchTopicMetadata({ topics });
    expect(metadata.map((t) => [t.name, t.partitions.length]).sort()).toEqual(
      topics.map((t) => [t, PARTITIONS]).sort(),
    );
  });

  test('GET /kafka/groups: a 2-partition topic, two members with one partition each', async () => {
    const groups = await groupsOf(url);
    expect(groups.map((g) => g.groupId).sort()).toEqual([names.airnavGroup, names.flight24Group].sort());

    const airnav = groups.find((g) => g.groupId === names.airnavGroup)!;
    expect(airnav.topics).toEqual([names.airnavTopic]);
    expect(airnav.state).toBe('Stable');
    expect(airnav.groupMembers).toBe(2);
    expect(airnav.members).toHaveLength(2);
    for (const member of airnav.members) {
      expect(member.state).toBe('joined');
      expect(member.memberId).toEqual(expect.any(String));
      expect(Object.keys(member.assignment)).toEqual([names.airnavTopic]);
      expect(member.assignment[names.airnavTopic]).toHaveLength(1);
      expect(member.lastError).toBeNull();
    }
    const assigned = airnav.members.flatMap((m) => m.assignment[names.airnavTopic]).sort();
    expect(assigned).toEqual([0, 1]);

    // Per partition: the owner in this process, the committed offset and the lag, from the broker.
    expect(airnav.partitions).toHaveLength(PARTITIONS);
    for (const partition of airnav.partitions!) {
      const owner = airnav.members.find((m) => m.assignment[names.airnavTopic].includes(partition.partition));
      expect(partition).toMatchObject({
        topic: names.airnavTopic,
        memberId: owner!.memberId,
        lag: 0,
        logEndOffset: 0,
      });
    }
    expect(airnav.lag).toBe(0);

    const one = await request(url).get(`/kafka/groups/${names.flight24Group}`).expect(200);
    expect((one.body as KafkaGroupStatus).members).toHaveLength(2);
    await request(url).get('/kafka/groups/no-such-group').expect(404);
  });

  test('GET /metrics: processed, failed and dead-lettered counts match the messages sent; lag and members', async () => {
    const simulator = new FlightSimulator(10);
    const positions = (count: number) =>
      Array.from({ length: count }, () => {
        const position = simulator.report();
        return { key: position.icao24, value: JSON.stringify(position) };
      });
    const producer = await kafka.producer();
    await producer.send({ topic: names.airnavTopic, acks: -1, messages: positions(40) });
    await producer.send({ topic: names.flight24Topic, acks: -1, messages: positions(25) });
    // Fails validation (icao24 is not 6 hex digits): no retry, straight to the dead-letter topic.
    const invalid = { ...simulator.report(), icao24: 'not-hex' };
    await producer.send({
      topic: names.flight24Topic,
      acks: -1,
      messages: [{ key: 'bad', value: JSON.stringify(invalid) }],
    });

    await waitFor('everything handled and committed', 30_000, async () => {
      const groups = await groupsOf(url);
      const airnav = groups.find((g) => g.groupId === names.airnavGroup)!;
      const flight24 = groups.find((g) => g.groupId === names.flight24Group)!;
      return (
        airnav.counts.processed === 40 &&
        flight24.counts.processed === 25 &&
        flight24.counts.deadLettered === 1 &&
        airnav.lag === 0 &&
        flight24.lag === 0
      );
    });

    const response = await request(url).get('/metrics').expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const samples = parsePrometheus(response.text);
    const airnav = { group: names.airnavGroup, topic: names.airnavTopic };
    const flight24 = { group: names.flight24Group, topic: names.flight24Topic };

    expect(sum(samples, 'kafka_consumer_messages_processed_total', airnav)).toBe(40);
    expect(sum(samples, 'kafka_consumer_messages_processed_total', flight24)).toBe(25);
    expect(sum(samples, 'kafka_consumer_messages_failed_total', airnav)).toBe(0);
    expect(sum(samples, 'kafka_consumer_messages_failed_total', flight24)).toBe(1);
    expect(sum(samples, 'kafka_consumer_messages_dead_lettered_total', airnav)).toBe(0);
    expect(sum(samples, 'kafka_consumer_messages_dead_lettered_total', flight24)).toBe(1);
    expect(sum(samples, 'kafka_consumer_handler_duration_seconds_count', airnav)).toBe(40);
    expect(sum(samples, 'kafka_consumer_handler_duration_seconds_count', flight24)).toBe(25);

    // Per partition, the counters and /kafka/groups's committed offsets equal the broker's end offsets.
    const ends = await (await kafka.admin()).fetchTopicOffsets(names.airnavTopic);
    expect(ends.reduce((total, end) => total + Number(end.high), 0)).toBe(40);
    const groups = await groupsOf(url);
    const airnavStatus = groups.find((g) => g.groupId === names.airnavGroup)!;
    for (const end of ends) {
      expect(
        sum(samples, 'kafka_consumer_messages_processed_total', {
          ...airnav,
          partition: String(end.partition),
        }),
      ).toBe(Number(end.high));
      expect(airnavStatus.partitions!.find((p) => p.partition === end.partition)?.committedOffset).toBe(
        Number(end.high),
      );
    }

    const lag = samples.filter(
      (s) => s.name === 'kafka_consumer_group_lag' && s.labels.group === names.airnavGroup,
    );
    expect(lag.map((s) => s.labels.partition).sort()).toEqual(['0', '1']);
    expect(lag.every((s) => s.value === 0)).toBe(true);
    expect(sum(samples, 'kafka_consumer_group_members', { group: names.airnavGroup, state: 'joined' })).toBe(
      2,
    );
    expect(sum(samples, 'kafka_consumer_group_members', { group: names.airnavGroup, state: 'crashed' })).toBe(
      0,
    );
    // The process's default metrics are there too.
    expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);

    // What the handlers did with the messages: the latest position per aircraft.
    const flights = await request(url).get('/airnav/flights').expect(200);
    expect((flights.body as unknown[]).length).toBe(10);
  });

  // The outage case stops a broker and starts it again on its data. It uses the test run's broker when the jest
  // global setup started it; with a broker it only reuses (docker compose, `npm run kafka:start`, another
  // developer's), it starts one of its own on free ports, which needs Java 17+.
  const sharedBroker = process.env.KAFKA_LOCAL_STARTED === '1';
  const outageTest = sharedBroker || javaAvailable() ? test : test.skip;
  const outageTitle = sharedBroker
    ? 'GET /health: 200, then 503 while the broker is stopped, 200 again after it returns (test run broker)'
    : javaAvailable()
      ? 'GET /health: 200, then 503 while the broker is stopped, 200 again after it returns (a broker of its own)'
      : "GET /health during a broker outage: SKIPPED, the broker is not the test run's and Java 17+ is missing to start one";

  outageTest(
    outageTitle,
    async () => {
      // Terminus logs every failing health check as an ERROR; this test fails it on purpose.
      expectErrorLines(/^Health Check has failed!/);
      let settings: LocalSettings;
      let target: { app: INestApplication; url: string; names: ServiceNames } | undefined;
      let own = false;
      if (sharedBroker) {
        settings = localSettings();
        target = { app, url, names };
      } else {
        const env: NodeJS.ProcessEnv = { ...process.env };
        delete env.KAFKA_BROKERS;
        env.KAFKA_PORT = String(await freePort());
        env.KAFKA_CONTROLLER_PORT = String(await freePort());
        env.KAFKA_NODES = '1';
        settings = localSettings(env);
        await startBroker({}, settings);
        own = true;
        const outageNames = serviceNames('svc-outage');
        target = { ...(await startService(outageNames, settings.brokers.split(','))), names: outageNames };
      }
      let brokerDown = false;
      try {
        const { url: targetUrl, names: targetNames } = target;
        const health = () => request(targetUrl).get('/health');
        await waitFor(
          'GET /health 200 before the outage',
          30_000,
          async () => (await health()).status === 200,
        );
        const up = await health();
        expect(up.body).toMatchObject({
          status: 'ok',
          details: { 'kafka-broker': { status: 'up' }, 'kafka-groups': { status: 'up' } },
        });

        await stopBrokerKeepData(settings);
        brokerDown = true;
        const down = await waitFor('GET /health 503 while the broker is stopped', 30_000, async () => {
          const response = await health();
          return response.status === 503 ? response : undefined;
        });
        expect(down.body).toMatchObject({ status: 'error', details: { 'kafka-broker': { status: 'down' } } });

        await startBrokerOnSameData(settings);
        brokerDown = false;
        const recovered = await waitFor(
          'GET /health 200 after the broker returned',
          120_000,
          async () => {
            const response = await health();
            return response.status === 200 ? response : undefined;
          },
          500,
        );
        expect(recovered.body).toMatchObject({ status: 'ok' });

        // Healthy means consuming: a message sent now is handled.
        const processed = async () =>
          (await groupsOf(targetUrl)).find((g) => g.groupId === targetNames.airnavGroup)!.counts.processed;
        const before = await processed();
        const position = new FlightSimulator(1).report();
        const producer = testKafkaOn(settings.brokers);
        await producer.connect();
        try {
          await producer.send({
            topic: targetNames.airnavTopic,
            acks: -1,
            messages: [{ key: position.icao24, value: JSON.stringify(position) }],
          });
        } finally {
          await producer.disconnect();
        }
        await waitFor(
          'the message sent after the outage handled',
          30_000,
          async () => (await processed()) === before + 1,
        );
      } finally {
        if (brokerDown) await startBrokerOnSameData(settings).catch(() => undefined);
        if (own) {
          await target?.app.close();
          await stopBroker({}, settings);
        }
      }
    },
    300_000,
  );
});
