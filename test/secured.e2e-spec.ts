/**
 * The built example service (dist/main.js) against a real secured Kafka: the launcher's KAFKA_SECURITY=sasl_ssl
 * mode (throwaway CA and certificates, SASL_SSL with PLAIN and SCRAM users, a mutual-TLS listener, the
 * StandardAuthorizer with ACLs). Configured only through the service's KAFKA_SASL_* / KAFKA_SSL_* variables.
 *
 * The spec starts its own secured broker on KAFKA_SECURE_PORT (19492; controller +1, mutual TLS +2: fixed, like the
 * fault suite's, so parallel checkouts choose theirs and a failure names the port) and stops it at the end.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import kafkajs from 'kafkajs';
import type { Admin, Kafka as KafkaClient, LogEntry } from 'kafkajs';
import {
  type BrokerCredentials,
  createAcls,
  localSettings,
  stopBroker,
} from '../scripts/kafka-local-lib.mjs';
import { allow, mtlsClientConfig, saslClientConfig } from 'nest-kafka-groups/testing';
import { TEST_RETRY, waitFor } from 'nest-kafka-groups/testing';
import { javaAvailable } from './support/local-machine.js';
import { kafkaConfigs, startSecuredBroker } from './support/secured-broker.js';
import { flightPosition, hexKey } from './support/flight-position.js';
import { ServiceProcess } from './support/service-process.js';

const { Kafka, Partitioners, logLevel } = kafkajs;

const AIRNAV = 'live-flight-airnav';
const FLIGHT24 = 'live-flight-flight24';
/** The broker asks each SASL session to log in again this often: a password rotated while running is met then. */
const REAUTH_MS = 15_000;
/** Users beside admin and svc-flights, each missing one permission. */
const NO_GROUP_USER = 'svc-nogroup';
const NO_DLT_USER = 'svc-nodlt';

function position(icao24: string) {
  return flightPosition(icao24, 'SEC1');
}

interface Health {
  status: string;
  error?: Record<string, { message?: string; groups?: Record<string, { problems?: string[] }> }>;
}

const suite = javaAvailable() ? describe : describe.skip;

suite('example service against a secured broker (SASL_SSL, mutual TLS, ACLs)', () => {
  let settings: ReturnType<typeof localSettings>;
  let credentials: BrokerCredentials;
  let brokers: string;
  let mtlsBrokers: string;
  let admin: KafkaClient;
  let adminClient: Admin;
  let wrongCa: string;
  const tmp = mkdtempSync(join(tmpdir(), 'secured-spec-'));
  const services: ServiceProcess[] = [];
  /** Every service's output and every HTTP body and dead-letter header seen: searched for secrets at the end. */
  const seen: string[] = [];
  const transcripts: string[][] = [];

  beforeAll(async () => {
    ({ settings, credentials, brokers } = await startSecuredBroker(
      'KAFKA_SECURE_PORT',
      19492,
      [NO_GROUP_USER, NO_DLT_USER],
      { 'listener.name.sasl_ssl.connections.max.reauth.ms': REAUTH_MS },
    ));
    mtlsBrokers = `127.0.0.1:${settings.mtlsPort}`;
    await createAcls(brokers, credentials, [
      // Reads the topics, may see one group but join neither.
      ...allow(NO_GROUP_USER, 'TOPIC', 'live-flight-', ['DESCRIBE', 'READ'], true),
      ...allow(NO_GROUP_USER, 'GROUP', 'nogroup-airnav', ['DESCRIBE']),
      // Reads the topics and joins its groups, writes to the source topics only (not to the dead-letter topics).
      ...allow(NO_DLT_USER, 'TOPIC', 'live-flight-', ['DESCRIBE', 'READ'], true),
      ...allow(NO_DLT_USER, 'TOPIC', AIRNAV, ['WRITE']),
      ...allow(NO_DLT_USER, 'TOPIC', FLIGHT24, ['WRITE']),
      ...allow(NO_DLT_USER, 'GROUP', 'nodlt-', ['READ', 'DESCRIBE'], true),
    ]);
    admin = new Kafka({
      ...saslClientConfig(credentials),
      clientId: 'secured-spec',
      brokers: [brokers],
      logLevel: logLevel.NOTHING,
      retry: TEST_RETRY,
    });
    adminClient = admin.admin({ retry: TEST_RETRY });
    await adminClient.connect();
    // An unrelated CA: the broker's certificate does not chain to it.
    wrongCa = join(tmp, 'wrong-ca.pem');
    const made = spawnSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', join(tmp, 'wrong-ca-key.pem'), '-out', wrongCa, '-days', '1', '-subj', '/CN=wrong CA'],
    ]);
    expect(made.status).toBe(0);
  });

  afterEach(async () => {
    await Promise.all(services.splice(0).map((service) => service.stop('SIGTERM')));
  });

  afterAll(async () => {
    await adminClient?.disconnect();
    if (settings) await stopBroker({}, settings);
    rmSync(tmp, { recursive: true, force: true });
  });

  function serviceEnv(overrides: Record<string, string>): Record<string, string> {
    return {
      KAFKA_BROKERS: brokers,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: credentials.ca,
      KAFKA_TOPIC_PARTITIONS: '2',
      KAFKA_HEALTH_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'verbose',
      ...overrides,
    };
  }

  /** A service and every line it printed (all levels: the secrets grep reads all of them). */
  interface Running {
    service: ServiceProcess;
    url: string;
    lines: string[];
  }

  async function startService(overrides: Record<string, string>): Promise<Running> {
    const lines: string[] = [];
    const service = new ServiceProcess(serviceEnv(overrides), (line) => lines.push(line));
    services.push(service);
    transcripts.push(lines);
    await service.waitUntilListening(60_000);
    return { service, url: `http://127.0.0.1:${service.port}`, lines };
  }

  async function getText(url: string): Promise<{ status: number; text: string }> {
    const response = await fetch(url);
    const text = await response.text();
    seen.push(text);
    return { status: response.status, text };
  }

  async function get<T>(url: string): Promise<{ status: number; body: T }> {
    const { status, text } = await getText(url);
    return { status, body: JSON.parse(text) as T };
  }

  async function produce(messages: { topic: string; key: string; value: string; partition?: number }[]) {
    const producer = admin.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: TEST_RETRY,
    });
    await producer.connect();
    try {
      for (const { topic, key, value, partition } of messages) {
        await producer.send({ topic, acks: -1, messages: [{ key, value, partition }] });
      }
    } finally {
      await producer.disconnect();
    }
  }

  /** Produces one position with a fresh key to each topic; resolves once the service handled both. */
  async function expectBothGroupsConsume(service: ServiceProcess): Promise<void> {
    const keys = { [AIRNAV]: hexKey(), [FLIGHT24]: hexKey() };
    await produce(
      Object.entries(keys).map(([topic, key]) => ({ topic, key, value: JSON.stringify(position(key)) })),
    );
    await waitFor('both groups to handle their message', 60_000, () =>
      Object.entries(keys).every(([topic, key]) =>
        service.processed.some((p) => p.topic === topic && p.key === key),
      ),
    );
  }

  async function waitForHealth(url: string, status: number, what: string, check: (body: Health) => boolean) {
    return waitFor(
      what,
      60_000,
      async () => {
        const health = await get<Health>(`${url}/health`);
        return health.status === status && check(health.body) ? health.body : undefined;
      },
      500,
    );
  }

  /**
   * ERROR lines that mention `text`, leaving out terminus's "Health Check has failed!" (it prints the whole
   * /health answer on every failing request: the answer is what the endpoint is for, not a new error).
   */
  function errorLines(lines: string[], text: string): string[] {
    return lines.filter(
      (line) => / ERROR /.test(line) && line.includes(text) && !line.includes('Health Check has failed!'),
    );
  }

  const svcPassword = () => credentials.users['svc-flights'];

  /** For the users without CREATE, when run alone: the SASL/PLAIN case otherwise has the service create them. */
  async function ensureTopics(): Promise<void> {
    const existing = new Set(await adminClient.listTopics());
    const topics = [AIRNAV, FLIGHT24].flatMap((t) => [t, `${t}-dlt`]).filter((t) => !existing.has(t));
    if (topics.length === 0) return;
    await adminClient.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({ topic, numPartitions: 2, replicationFactor: 1 })),
    });
  }

  test('SASL/PLAIN: the service creates its topics and both groups consume', async () => {
    const { service, url } = await startService({
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'svc-flights',
      KAFKA_SASL_PASSWORD: svcPassword(),
    });
    await expectBothGroupsConsume(service);
    await waitForHealth(url, 200, 'health up', () => true);
    await get(`${url}/kafka/groups`);
    expect((await getText(`${url}/metrics`)).text).toContain('kafka');
    // A message that fails validation goes to the dead-letter topic; its headers join the secrets grep.
    await produce([{ topic: AIRNAV, key: hexKey(), value: '{"not":"a position"}' }]);
    const reader = admin.consumer({ groupId: `dlt-reader-${hexKey()}`, retry: TEST_RETRY });
    const dead: string[] = [];
    await reader.connect();
    await reader.subscribe({ topic: `${AIRNAV}-dlt`, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => {
        const headers = Object.entries(message.headers ?? {}).map(([k, v]) => `${k}=${String(v)}`);
        dead.push(headers.join('\n'));
      },
    });
    await waitFor('the dead-lettered message', 30_000, () => dead.length > 0);
    await reader.disconnect();
    expect(dead[0]).toContain('kafka_dlt-original-topic');
    seen.push(...dead);
  });

  test('SASL/SCRAM-SHA-512: both groups consume', async () => {
    const { service, url } = await startService({
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'svc-flights',
      KAFKA_SASL_PASSWORD: svcPassword(),
    });
    await expectBothGroupsConsume(service);
    await waitForHealth(url, 200, 'health up', () => true);
  });

  test("mutual TLS (client certificate, no SASL): both groups consume as the certificate's user", async () => {
    const { service, url } = await startService({
      KAFKA_BROKERS: mtlsBrokers,
      KAFKA_SSL_CERT_FILE: credentials.clientCert,
      KAFKA_SSL_KEY_FILE: credentials.clientKey,
    });
    await expectBothGroupsConsume(service);
    await waitForHealth(url, 200, 'health up', () => true);
  });

  test('wrong password: one clear error naming broker and mechanism, health 503 with it, backoff, recovery after a fix and restart', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const env = { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'svc-flights' };
    const { service, url, lines } = await startService({ ...env, KAFKA_SASL_PASSWORD: wrong });
    const reason = `Kafka authentication failed at broker ${brokers} (SASL_SSL, SCRAM-SHA-512, user svc-flights)`;
    const health = await waitForHealth(
      url,
      503,
      'health down naming the failure for the broker and both groups',
      (body) =>
        Boolean(body.error?.['kafka-broker']?.message?.includes(reason)) &&
        Object.values(body.error?.['kafka-groups']?.groups ?? {}).every((group) =>
          group.problems?.some((problem) => problem.includes(reason)),
        ),
    );
    expect(health.error!['kafka-broker'].message).toContain(reason);
    // Both groups' members retry with a growing delay (2 s, 4 s, ...): wait for a second round of each.
    await waitFor('members retrying with backoff', 30_000, () =>
      lines.join('\n').includes('trying again in 4000 ms'),
    );
    expect(errorLines(lines, 'authentication failed')).toHaveLength(1);
    expect(errorLines(lines, 'authentication failed')[0]).toContain(reason);
    expect(lines.join('\n')).not.toContain(wrong);
    await service.stop();

    const fixed = await startService({ ...env, KAFKA_SASL_PASSWORD: svcPassword() });
    await expectBothGroupsConsume(fixed.service);
    await waitForHealth(fixed.url, 200, 'health up after the fix', () => true);
  });

  /** Sets `user`'s SCRAM-SHA-512 password on the broker. */
  async function setScramPassword(user: string, password: string): Promise<void> {
    await kafkaConfigs({ brokers, credentials }, tmp, [
      ...['--alter', '--add-config', `SCRAM-SHA-512=[password=${password}]`],
      ...['--entity-type', 'users', '--entity-name', user],
    ]);
  }

  test("password rotated on the broker while running: one ERROR naming the user for the broker's two wordings (re-authentication, then login), one Resolved line once the old password is back", async () => {
    const { service, url, lines } = await startService({
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'svc-flights',
      KAFKA_SASL_PASSWORD: svcPassword(),
    });
    await expectBothGroupsConsume(service);
    const reason = `Kafka authentication failed at broker ${brokers} (SASL_SSL, SCRAM-SHA-512, user svc-flights)`;
    await setScramPassword('svc-flights', `rotated-${randomBytes(8).toString('hex')}`);
    try {
      // The next re-authentication of a running session fails first, then every new login.
      await waitFor('a refused re-authentication and a refused login', REAUTH_MS + 60_000, () =>
        ['during re-authentication', 'during authentication'].every((wording) =>
          lines.some((line) => line.includes(reason) && line.includes(wording)),
        ),
      );
      await waitForHealth(url, 503, 'health down naming the user', (body) =>
        JSON.stringify(body).includes(reason),
      );
      expect(errorLines(lines, 'authentication failed')).toHaveLength(1);
    } finally {
      await setScramPassword('svc-flights', svcPassword());
    }
    await expectBothGroupsConsume(service);
    await waitForHealth(url, 200, 'health up with the password back', () => true);
    expect(lines.filter((line) => line.includes(`Resolved: ${reason}`))).toHaveLength(1);
    expect(errorLines(lines, 'authentication failed')).toHaveLength(1);
  });

  test('untrusted broker certificate (wrong CA): one clear TLS error, health 503 with it', async () => {
    const { url, lines } = await startService({
      KAFKA_SSL_CA_FILE: wrongCa,
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'svc-flights',
      KAFKA_SASL_PASSWORD: svcPassword(),
    });
    const reason = `Kafka authentication failed at broker ${brokers} (SASL_SSL, PLAIN, user svc-flights): TLS handshake failed`;
    await waitForHealth(url, 503, 'health down naming the TLS failure', (body) =>
      JSON.stringify(body).includes(reason),
    );
    expect(errorLines(lines, 'TLS handshake failed')).toHaveLength(1);
  });

  test('a user without READ on its groups: members stopped and named in /health and /kafka/groups, reported once, no retry loop', async () => {
    await ensureTopics();
    const groups = { AIRNAV_GROUP_ID: 'nogroup-airnav', FLIGHT24_GROUP_ID: 'nogroup-flight24' };
    const { url, lines } = await startService({
      ...groups,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: NO_GROUP_USER,
      KAFKA_SASL_PASSWORD: credentials.users[NO_GROUP_USER],
    });
    const denial = (group: string) => `not authorized to use group ${group} as user ${NO_GROUP_USER}`;
    await waitForHealth(url, 503, 'both groups stopped by the ACLs', (body) =>
      Object.values(groups).every((group) => JSON.stringify(body).includes(denial(group))),
    );
    const { body } = await get<{
      groups: { groupId: string; members: { state: string; lastError: string }[] }[];
    }>(`${url}/kafka/groups`);
    // Both groups listed: the check below holds for each of them, not vacuously for none.
    expect(body.groups.map((group) => group.groupId).sort()).toEqual(Object.values(groups).sort());
    for (const group of body.groups) {
      expect(group.members).toEqual([
        expect.objectContaining({ state: 'stopped', lastError: denial(group.groupId) }),
      ]);
    }
    // Well past the first recreate delay of an ordinary failure (2 s): a denial is not retried that soon.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    for (const group of Object.values(groups)) expect(errorLines(lines, denial(group))).toHaveLength(1);
    expect(lines.join('\n')).toContain('trying again in 60000 ms');
  });

  test('a user without WRITE on the dead-letter topic: the partition stops at the message, nothing committed past it', async () => {
    await ensureTopics();
    const group = 'nodlt-airnav';
    const { service, url, lines } = await startService({
      AIRNAV_GROUP_ID: group,
      FLIGHT24_GROUP_ID: 'nodlt-flight24',
      KAFKA_FROM_BEGINNING: 'false',
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: NO_DLT_USER,
      KAFKA_SASL_PASSWORD: credentials.users[NO_DLT_USER],
    });
    await waitForHealth(url, 200, 'both groups joined', () => true);
    const before = await adminClient.fetchTopicOffsets(AIRNAV);
    const poisonOffset = Number(before.find((p) => p.partition === 0)!.high);
    const after = hexKey();
    await produce([
      { topic: AIRNAV, key: hexKey(), value: 'not json', partition: 0 },
      { topic: AIRNAV, key: after, value: JSON.stringify(position(after)), partition: 0 },
    ]);
    const where = `${AIRNAV}:0`;
    const health = await waitForHealth(url, 503, `partition ${where} stopped`, (body) =>
      JSON.stringify(body).includes(`partition ${where} is stopped`),
    );
    expect(JSON.stringify(health)).toContain(
      `not authorized to write topic ${AIRNAV}-dlt as user ${NO_DLT_USER}`,
    );
    const [committed] = await adminClient.fetchOffsets({ groupId: group, topics: [AIRNAV] });
    const offset = Number(committed.partitions.find((p) => p.partition === 0)?.offset ?? -1);
    expect(offset).toBeLessThanOrEqual(poisonOffset);
    expect(service.processed.some((p) => p.key === after)).toBe(false);
    expect(errorLines(lines, `not authorized to write topic ${AIRNAV}-dlt`)).toHaveLength(1);
  });

  test('kafkajs itself at debug level, HTTP bodies, logs and dead-letter headers never show a password or a key', async () => {
    // kafkajs's own log at every level, for each way in and for the failures.
    const lines: string[] = [];
    const logCreator = () => (entry: LogEntry) => lines.push(JSON.stringify(entry));
    const attempts = [
      { ...saslClientConfig(credentials, { user: 'svc-flights', mechanism: 'plain' }), brokers: [brokers] },
      {
        ...saslClientConfig(credentials, { user: 'svc-flights', mechanism: 'scram-sha-256' }),
        brokers: [brokers],
      },
      {
        ...saslClientConfig(credentials, { user: 'svc-flights', mechanism: 'scram-sha-512' }),
        brokers: [brokers],
      },
      { ...mtlsClientConfig(credentials), brokers: [mtlsBrokers] },
      {
        ...saslClientConfig(credentials, { user: 'svc-flights', mechanism: 'scram-sha-512' }),
        sasl: {
          mechanism: 'scram-sha-512' as const,
          username: 'svc-flights',
          password: 'wrong-password-xyz',
        },
        brokers: [brokers],
      },
      {
        ...mtlsClientConfig(credentials),
        ssl: { ...mtlsClientConfig(credentials).ssl, ca: [readFileSync(wrongCa, 'utf8')] },
        brokers: [mtlsBrokers],
      },
    ];
    let connected = 0;
    for (const config of attempts) {
      const client = new Kafka({
        ...config,
        clientId: 'grep',
        logLevel: logLevel.DEBUG,
        logCreator,
        retry: { retries: 0 },
      });
      const probe = client.admin({ retry: { retries: 0 } });
      try {
        await probe.connect();
        await probe.listTopics();
        connected++;
      } catch {
        // The last two are meant to fail.
      } finally {
        await probe.disconnect();
      }
    }
    expect(connected).toBe(4);
    seen.push(...lines);

    const secrets = [
      ...Object.values(credentials.users),
      ...[credentials.clientKey, credentials.brokerKey, credentials.caKey].map(
        (file) => readFileSync(file, 'utf8').split('\n')[1],
      ),
    ];
    const everything = [...seen, ...transcripts.flat()].join('\n');
    expect(everything.length).toBeGreaterThan(10_000);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(16);
      expect(everything.includes(secret)).toBe(false);
    }
  });
});
