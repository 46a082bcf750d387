/**
 * Outside-in probe 5: the built example service (dist/main.js) against a secured broker as operators run one
 * (Kafka 4.1 KRaft, SASL_SSL with SCRAM users, the StandardAuthorizer with ACLs, client quotas set with Kafka's own
 * `kafka-configs` tool class). See docs/RELIABILITY.md, finding 19.
 *
 * The spec starts its own secured broker on KAFKA_OUTSIDE5_PORT (19292; controller +1, mutual TLS +2: fixed, like
 * the other specs' own brokers, so parallel checkouts choose theirs and a failure names the port) and stops it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { ConsoleLogger } from '@nestjs/common';
import kafkajs from 'kafkajs';
import type { Admin, Kafka as KafkaClient } from 'kafkajs';
import {
  type BrokerCredentials,
  createAcls,
  localSettings,
  stopBroker,
} from '../scripts/kafka-local-lib.mjs';
import { allow, saslClientConfig, TEST_RETRY, waitFor } from 'nest-kafka-groups/testing';
import { javaAvailable } from './support/local-machine.js';
import { kafkaConfigs, startSecuredBroker } from './support/secured-broker.js';
import { startTestApp } from './support/nest-test-app.js';
import { recordingFeature } from './support/recording-feature.js';
import { flightPosition, hexKey } from './support/flight-position.js';
import { ServiceProcess } from './support/service-process.js';

const { Kafka, logLevel } = kafkajs;

const AIRNAV = 'live-flight-airnav';
const FLIGHT24 = 'live-flight-flight24';
/** Reads flight24's topic, may see airnav's but not read it. */
const NO_READ_USER = 'svc-noread';
/** Runs under a consumer and a producer byte-rate quota. */
const QUOTA_USER = 'svc-quota';
/** Reads and writes its topics but may not create any: one dead-letter topic is missing. */
const NO_CREATE_USER = 'svc-nocreate';
/** May create its topics but not read the broker's configs (the cluster's DESCRIBE_CONFIGS). */
const NO_CLUSTER_USER = 'svc-nocluster';
const ADMIN_TOKEN = 'outside-in-5-token';

function position(icao24: string) {
  return flightPosition(icao24, 'OUT5');
}

interface Health {
  status: string;
  error?: Record<string, unknown>;
}

const suite = javaAvailable() ? describe : describe.skip;

suite('outside-in 5: secured broker, ACLs and quotas as operators set them', () => {
  let settings: ReturnType<typeof localSettings>;
  let credentials: BrokerCredentials;
  let brokers: string;
  let admin: KafkaClient;
  let adminClient: Admin;
  const services: ServiceProcess[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'outside-in-5-'));

  beforeAll(async () => {
    ({ settings, credentials, brokers } = await startSecuredBroker('KAFKA_OUTSIDE5_PORT', 19292, [
      NO_READ_USER,
      QUOTA_USER,
      NO_CREATE_USER,
      NO_CLUSTER_USER,
    ]));
    await createAcls(brokers, credentials, [
      ...allow(NO_READ_USER, 'TOPIC', AIRNAV, ['DESCRIBE']),
      ...allow(NO_READ_USER, 'TOPIC', FLIGHT24, ['DESCRIBE', 'READ']),
      ...allow(NO_READ_USER, 'TOPIC', 'live-flight-', ['WRITE'], true),
      ...allow(NO_READ_USER, 'GROUP', 'noread-', ['READ', 'DESCRIBE'], true),
      ...allow(QUOTA_USER, 'TOPIC', 'quota-', ['CREATE', 'DESCRIBE', 'READ', 'WRITE'], true),
      ...allow(QUOTA_USER, 'GROUP', 'quota-', ['READ', 'DESCRIBE'], true),
      ...allow(NO_CREATE_USER, 'TOPIC', 'nocreate-', ['DESCRIBE', 'READ', 'WRITE'], true),
      ...allow(NO_CREATE_USER, 'GROUP', 'nocreate-', ['READ', 'DESCRIBE'], true),
      ...allow(
        NO_CLUSTER_USER,
        'TOPIC',
        'nocluster-',
        ['CREATE', 'DESCRIBE', 'DESCRIBE_CONFIGS', 'READ', 'WRITE'],
        true,
      ),
      ...allow(NO_CLUSTER_USER, 'GROUP', 'nocluster-', ['READ', 'DESCRIBE'], true),
    ]);
    admin = new Kafka({
      ...saslClientConfig(credentials),
      clientId: 'outside-in-5',
      brokers: [brokers],
      logLevel: logLevel.NOTHING,
      retry: TEST_RETRY,
    });
    adminClient = admin.admin({ retry: TEST_RETRY });
    await adminClient.connect();
    await adminClient.createTopics({
      waitForLeaders: true,
      topics: [AIRNAV, FLIGHT24]
        .flatMap((t) => [t, `${t}-dlt`])
        .concat(['nocreate-airnav', 'nocreate-airnav-dlt', 'nocreate-flight24'])
        // No ACL of svc-nocreate's: they exist, but not to it.
        .concat(['hidden-flight24', 'hidden-flight24-dlt'])
        .map((topic) => ({ topic, numPartitions: 2, replicationFactor: 1 })),
    });
  });

  afterEach(async () => {
    await Promise.all(services.splice(0).map((service) => service.stop('SIGTERM')));
  });

  afterAll(async () => {
    await adminClient?.disconnect();
    if (settings) await stopBroker({}, settings);
    rmSync(tmp, { recursive: true, force: true });
  });

  interface Running {
    service: ServiceProcess;
    url: string;
    lines: string[];
  }

  async function startService(user: string, overrides: Record<string, string>): Promise<Running> {
    const lines: string[] = [];
    const service = new ServiceProcess(
      {
        KAFKA_BROKERS: brokers,
        KAFKA_SSL: 'true',
        KAFKA_SSL_CA_FILE: credentials.ca,
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: user,
        KAFKA_SASL_PASSWORD: credentials.users[user],
        KAFKA_TOPIC_PARTITIONS: '2',
        KAFKA_HEALTH_TIMEOUT_MS: '2000',
        KAFKA_ADMIN_TOKEN: ADMIN_TOKEN,
        ...overrides,
      },
      (line) => lines.push(line),
    );
    services.push(service);
    await service.waitUntilListening(60_000);
    return { service, url: `http://127.0.0.1:${service.port}`, lines };
  }

  async function health(url: string): Promise<{ status: number; body: Health }> {
    const response = await fetch(`${url}/health`);
    return { status: response.status, body: (await response.json()) as Health };
  }

  async function control(url: string, groupId: string, action: 'stop' | 'start'): Promise<void> {
    const response = await fetch(`${url}/kafka/groups/${groupId}/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBeLessThan(300);
  }

  async function controlTopics(url: string, groupId: string, action: 'pause' | 'resume', topics: string[]) {
    const response = await fetch(`${url}/kafka/groups/${groupId}/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topics }),
    });
    expect(response.status).toBe(200);
  }

  async function produce(topic: string, messages: { key: string; value: string }[], perBatch = 10) {
    const producer = admin.producer({ retry: TEST_RETRY });
    await producer.connect();
    try {
      for (let i = 0; i < messages.length; i += perBatch) {
        await producer.send({ topic, acks: -1, messages: messages.slice(i, i + perBatch) });
      }
    } finally {
      await producer.disconnect();
    }
  }

  /** ERROR lines naming `text`, leaving out terminus's "Health Check has failed!" (it prints the /health answer). */
  function errorLines(lines: string[], text: string): string[] {
    return lines.filter(
      (line) => / ERROR /.test(line) && line.includes(text) && !line.includes('Health Check has failed!'),
    );
  }

  test('no READ on one handler topic: that group stopped with the ACL named, reported once, not "resolved" by a recheck that is still refused; the other group consumes; granting READ lets it in', async () => {
    const groups = { AIRNAV_GROUP_ID: 'noread-airnav', FLIGHT24_GROUP_ID: 'noread-flight24' };
    const { service, url, lines } = await startService(NO_READ_USER, groups);
    const denial = `not authorized to read topic ${AIRNAV} in group noread-airnav as user ${NO_READ_USER}`;
    await waitFor('the airnav group stopped by the topic ACL', 60_000, async () => {
      const { status, body } = await health(url);
      return status === 503 && JSON.stringify(body).includes(denial);
    });
    // The refused member leaves the group as it stops, as released kafkajs's crash path does: its partitions are
    // not held until the session timeout (30 s), and the recheck's join below does not wait for it.
    await waitFor('the refused member to leave group noread-airnav', 10_000, async () => {
      const [group] = (await adminClient.describeGroups(['noread-airnav'])).groups;
      return group.members.length === 0;
    });
    const early = hexKey();
    await produce(AIRNAV, [{ key: early, value: JSON.stringify(position(early)) }]);
    const other = hexKey();
    await produce(FLIGHT24, [{ key: other, value: JSON.stringify(position(other)) }]);
    await waitFor('the flight24 group, which may read its topic, to consume', 30_000, () =>
      service.processed.some((p) => p.key === other),
    );

    // A recheck before the ACL changed (here at once, by stopping and starting the group as an operator would):
    // the join succeeds (the group ACL allows it), the fetch is refused again.
    const refusals = () =>
      lines.filter((line) => line.includes(`${denial}; group noread-airnav member 0 stopped`));
    expect(refusals()).toHaveLength(1);
    const joins = () =>
      lines.filter((line) => /\[ConsumerMember:noread-airnav#0\] Joined as /.test(line)).length;
    const joinedBefore = joins();
    await control(url, 'noread-airnav', 'stop');
    await control(url, 'noread-airnav', 'start');
    // Every /health answer from the start to the refusal: the recheck's join is not the end of the denial.
    const statuses: number[] = [];
    await waitFor(
      'the recheck refused again',
      30_000,
      async () => {
        statuses.push((await health(url)).status);
        return refusals().length === 2;
      },
      20,
    );
    expect(joins()).toBe(joinedBefore + 1);
    expect(statuses).not.toContain(200);
    expect(lines.filter((line) => line.includes(`Resolved: ${denial}`))).toEqual([]);
    expect(errorLines(lines, denial)).toHaveLength(1);
    const [committed] = await adminClient.fetchOffsets({ groupId: 'noread-airnav', topics: [AIRNAV] });
    expect(committed.partitions.every((p) => p.offset === '-1')).toBe(true);
    expect(service.processed.some((p) => p.key === early)).toBe(false);

    // Paused by the operator, the topic is left out of the fetches of the next recheck: one that goes through
    // without it lifts nothing. No event tells that it went through: health is watched for six fetch waits (500 ms).
    await controlTopics(url, 'noread-airnav', 'pause', [AIRNAV]);
    await control(url, 'noread-airnav', 'stop');
    await control(url, 'noread-airnav', 'start');
    await waitFor('the recheck with the topic paused joined', 30_000, () => joins() === joinedBefore + 2);
    const pausedStatuses: number[] = [];
    for (const until = Date.now() + 3_000; Date.now() < until;) {
      pausedStatuses.push((await health(url)).status);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(pausedStatuses).not.toContain(200);
    expect(lines.filter((line) => line.includes(`Resolved: ${denial}`))).toEqual([]);
    await controlTopics(url, 'noread-airnav', 'resume', [AIRNAV]);
    await waitFor('the resumed topic refused again', 30_000, () => refusals().length === 3);
    expect(errorLines(lines, denial)).toHaveLength(1);

    // Granted: the next check lets the member in; it reads what waited, the denial is resolved once.
    await createAcls(brokers, credentials, allow(NO_READ_USER, 'TOPIC', AIRNAV, ['READ']));
    await control(url, 'noread-airnav', 'stop');
    await control(url, 'noread-airnav', 'start');
    await waitFor('the airnav group to handle the record that waited', 30_000, () =>
      service.processed.some((p) => p.key === early),
    );
    await waitFor('health up', 30_000, async () => (await health(url)).status === 200);
    expect(lines.filter((line) => line.includes(`Resolved: ${denial}`))).toHaveLength(1);
    expect(errorLines(lines, denial)).toHaveLength(1);
  });

  test('no CREATE and one dead-letter topic missing: one WARN naming only that topic and the refused create; the group whose topics exist says nothing', async () => {
    const { lines } = await startService(NO_CREATE_USER, {
      AIRNAV_GROUP_ID: 'nocreate-airnav',
      AIRNAV_TOPIC: 'nocreate-airnav',
      FLIGHT24_GROUP_ID: 'nocreate-flight24',
      FLIGHT24_TOPIC: 'nocreate-flight24',
    });
    const refusal = `not authorized to create topic nocreate-flight24-dlt as user ${NO_CREATE_USER}`;
    // kafkajs's own texts say "Not authorized", the library's "not authorized".
    const about = (line: string) => /\b(WARN|ERROR)\b/.test(line) && /not authorized/i.test(line);
    // Both groups start (the members need no CREATE); by then each group's topic check has run.
    await waitFor('both groups joined', 60_000, () =>
      ['nocreate-airnav', 'nocreate-flight24'].every((group) =>
        lines.some((line) => line.includes(`[ConsumerMember:${group}#0] Joined as`)),
      ),
    );
    const reported = lines.filter(about);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toContain(' WARN [GroupRunner:nocreate-flight24] ');
    const message = reported[0].split('[GroupRunner:nocreate-flight24] ')[1];
    expect(message).toContain(refusal);
    // The source topic, which exists, is not named as if it were missing.
    expect(message).not.toMatch(/nocreate-flight24(?!-dlt)/);
    // Nothing was created: no word of the size a created topic would have had.
    expect(lines.filter((line) => /\bWARN\b/.test(line) && line.includes('[TopicProvisioner]'))).toEqual([]);
  });

  test('topic creation off, topics that exist but the user may not describe: a WARN naming the refused DESCRIBE, not an ERROR that they do not exist', async () => {
    const { lines } = await startService(NO_CREATE_USER, {
      KAFKA_CREATE_TOPICS: 'false',
      AIRNAV_GROUP_ID: 'nocreate-hidden-airnav',
      AIRNAV_TOPIC: 'nocreate-airnav',
      FLIGHT24_GROUP_ID: 'nocreate-hidden',
      FLIGHT24_TOPIC: 'hidden-flight24',
    });
    const check = (line: string) => line.includes('[GroupRunner:nocreate-hidden]');
    await waitFor('the topic check of group nocreate-hidden to report', 30_000, () => lines.some(check));
    expect(lines.filter(check)).toEqual([
      expect.stringContaining(
        ' WARN [GroupRunner:nocreate-hidden] Topic check refused: not authorized to describe topics hidden-flight24, ' +
          `hidden-flight24-dlt as user ${NO_CREATE_USER} (whether they exist is hidden without DESCRIBE: grant ` +
          'DESCRIBE, and READ or WRITE as the group needs)',
      ),
    ]);
  });

  test("CREATE but no DESCRIBE_CONFIGS on the cluster, topics without partitions or replicationFactor: the WARN names the broker's configs, the setting and the ACL, not the topics", async () => {
    const warnings = jest.spyOn(ConsoleLogger.prototype, 'warn');
    const { app } = await startTestApp([recordingFeature('nocluster-group', 'nocluster-topic')], {
      brokers: [brokers],
      ...saslClientConfig(credentials, { user: NO_CLUSTER_USER }),
      topics: { create: true },
    });
    try {
      const about = () =>
        warnings.mock.calls.map(([line]) => String(line)).filter((line) => line.includes('not authorized'));
      await waitFor('the topic check to report the refusal', 20_000, () => about().length > 0);
      expect(about()).toHaveLength(1);
      expect(about()[0]).toContain(
        'Topic check refused: not authorized to describe the configs of the cluster as user svc-nocluster (the ' +
          "broker's num.partitions and default.replication.factor, for the topics it creates: grant " +
          'DESCRIBE_CONFIGS on the cluster, or set topics.partitions and topics.replicationFactor); checking again',
      );
      expect(about()[0]).not.toContain('nocluster-topic');
    } finally {
      warnings.mockRestore();
      await app.close();
    }
  });

  test('consumer and producer byte-rate quotas: throttled fetches and dead-letter writes lose nothing, no rebalance, no WARN or ERROR', async () => {
    const topic = 'quota-airnav';
    const quota = 'consumer_byte_rate=20000,producer_byte_rate=10000';
    const setting = kafkaConfigs({ brokers, credentials }, tmp, [
      '--alter',
      '--add-config',
      quota,
      '--entity-type',
      'users',
      '--entity-name',
      QUOTA_USER,
    ]);
    const { service, url, lines } = await startService(QUOTA_USER, {
      AIRNAV_GROUP_ID: 'quota-airnav',
      AIRNAV_TOPIC: topic,
      FLIGHT24_GROUP_ID: 'quota-flight24',
      FLIGHT24_TOPIC: 'quota-flight24',
    });
    expect(await setting).toContain(`Completed updating config for user ${QUOTA_USER}`);
    await waitFor('both groups joined', 60_000, async () => (await health(url)).status === 200);

    // About 1 KB a record (the key carries the size: the DTO forbids unknown fields), in batches of 10 records, as
    // a Java producer's 16 KB batches would be: 200 KB to read at 20 KB/s, well past what the broker lets through
    // unthrottled in its quota window, and 50 KB of dead letters at 10 KB/s.
    // From here on: the health polls above fail until the groups joined, which is start-up, not throttling.
    const fromProduce = lines.length;
    const pad = 'x'.repeat(1000);
    const good = Array.from({ length: 150 }, (_, i) => `g${i}-${hexKey()}-${pad}`);
    const bad = Array.from({ length: 50 }, (_, i) => `b${i}-${hexKey()}-${pad}`);
    await produce(topic, [
      ...good.map((key) => ({ key, value: JSON.stringify(position(hexKey())) })),
      ...bad.map((key) => ({ key, value: `not json ${pad}` })),
    ]);
    const dlt = async () =>
      (await adminClient.fetchTopicOffsets(`${topic}-dlt`)).reduce((sum, p) => sum + Number(p.high), 0);
    await waitFor('every record handled or dead-lettered', 90_000, async () => {
      const handled = new Set(service.processed.filter((p) => p.topic === topic).map((p) => p.key));
      return good.every((key) => handled.has(key)) && (await dlt()) >= bad.length;
    });
    expect(await dlt()).toBe(bad.length);
    const ends = await adminClient.fetchTopicOffsets(topic);
    await waitFor('the group to commit to the end', 30_000, async () => {
      const [committed] = await adminClient.fetchOffsets({ groupId: 'quota-airnav', topics: [topic] });
      return ends.every((end) =>
        committed.partitions.some((p) => p.partition === end.partition && p.offset === end.high),
      );
    });
    expect(lines.filter((line) => line.includes('[ConsumerMember:quota-airnav#0] Joined as'))).toHaveLength(
      1,
    );
    const alarms = lines
      .slice(fromProduce)
      .filter(
        (line) =>
          /\b(WARN|ERROR)\b/.test(line) &&
          !line.includes('gave up on') &&
          !line.includes('KafkaPayloadDecodeError'),
      );
    expect(alarms).toEqual([]);
  });
});
