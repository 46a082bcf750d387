import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { Environment, EnvironmentError, validateEnvironment } from './environment.js';
import { kafkaSecurityOf } from './kafka-security.js';

function failure(raw: Record<string, unknown>): Error {
  let thrown: unknown;
  try {
    validateEnvironment(raw);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(Error);
  return thrown as Error;
}

describe('validateEnvironment', () => {
  test('an empty environment gets the defaults', () => {
    const environment = validateEnvironment({});
    expect(environment).toBeInstanceOf(Environment);
    // toMatchObject: the class grows new variables; these are the ones every deployment relies on.
    expect(environment).toMatchObject({
      PORT: 3000,
      KAFKA_BROKERS: '127.0.0.1:9092',
      KAFKA_CLIENT_ID: 'flight-tracker',
      AIRNAV_GROUP_ID: 'airnav',
      AIRNAV_TOPIC: 'live-flight-airnav',
      FLIGHT24_GROUP_ID: 'flight24',
      FLIGHT24_TOPIC: 'live-flight-flight24',
      KAFKA_GROUP_CONCURRENCY: 1,
      KAFKA_FROM_BEGINNING: true,
      KAFKA_SHUTDOWN_TIMEOUT_MS: 30_000,
      FLIGHTS_MAX_AIRCRAFT: 10_000,
      FLIGHTS_MAX_CLOCK_SKEW_MS: 60_000,
      LOG_LEVEL: 'log',
    });
  });

  test('the flight store bounds are read as integers and checked', () => {
    expect(
      validateEnvironment({ FLIGHTS_MAX_AIRCRAFT: '500', FLIGHTS_MAX_CLOCK_SKEW_MS: '0' }),
    ).toMatchObject({
      FLIGHTS_MAX_AIRCRAFT: 500,
      FLIGHTS_MAX_CLOCK_SKEW_MS: 0,
    });
    expect(failure({ FLIGHTS_MAX_AIRCRAFT: '0' }).message).toContain('FLIGHTS_MAX_AIRCRAFT="0"');
    expect(failure({ FLIGHTS_MAX_AIRCRAFT: 'many' }).message).toContain('FLIGHTS_MAX_AIRCRAFT');
    expect(failure({ FLIGHTS_MAX_CLOCK_SKEW_MS: '-1' }).message).toContain('FLIGHTS_MAX_CLOCK_SKEW_MS');
  });

  test('every declared variable has a default, so nothing is left undefined', () => {
    const environment = validateEnvironment({});
    for (const [name, value] of Object.entries(environment))
      expect([name, value]).not.toEqual([name, undefined]);
  });

  test('numeric strings become numbers', () => {
    const environment = validateEnvironment({
      PORT: '8080',
      KAFKA_GROUP_CONCURRENCY: '3',
      KAFKA_SHUTDOWN_TIMEOUT_MS: '5000',
    });
    expect(environment.PORT).toBe(8080);
    expect(typeof environment.PORT).toBe('number');
    expect(environment.KAFKA_GROUP_CONCURRENCY).toBe(3);
    expect(environment.KAFKA_SHUTDOWN_TIMEOUT_MS).toBe(5000);
  });

  test.each([
    ['false', false],
    ['0', false],
    ['true', true],
    ['1', true],
  ])('KAFKA_FROM_BEGINNING=%s is %p', (value, expected) => {
    expect(validateEnvironment({ KAFKA_FROM_BEGINNING: value }).KAFKA_FROM_BEGINNING).toBe(expected);
  });

  test('given values replace the defaults', () => {
    const environment = validateEnvironment({
      KAFKA_BROKERS: 'kafka-1:9092,kafka-2:19092',
      AIRNAV_TOPIC: 'airnav-prod',
      LOG_LEVEL: 'debug',
    });
    expect(environment.KAFKA_BROKERS).toBe('kafka-1:9092,kafka-2:19092');
    expect(environment.AIRNAV_TOPIC).toBe('airnav-prod');
    expect(environment.LOG_LEVEL).toBe('debug');
    expect(environment.FLIGHT24_TOPIC).toBe('live-flight-flight24');
  });

  test.each([['localhost'], ['localhost:9092,'], ['a:1;b:2'], ['kafka:port'], ['a:1, b:2'], [' ']])(
    'KAFKA_BROKERS=%j is rejected with a message naming KAFKA_BROKERS',
    (brokers) => {
      const error = failure({ KAFKA_BROKERS: brokers });
      expect(error.message).toContain('Invalid environment');
      expect(error.message).toContain(`KAFKA_BROKERS=${JSON.stringify(brokers)}`);
      expect(error.message).toContain('KAFKA_BROKERS must be "host:port[,host:port...]"');
    },
  );

  test.each([['abc'], ['70000'], ['-1'], ['80.5']])('PORT=%s is rejected naming PORT', (port) => {
    const error = failure({ PORT: port });
    expect(error.message).toMatch(/(^|; |: )PORT=/);
  });

  test('KAFKA_GROUP_CONCURRENCY=0 is rejected naming it', () => {
    expect(failure({ KAFKA_GROUP_CONCURRENCY: '0' }).message).toContain('KAFKA_GROUP_CONCURRENCY="0"');
  });

  test('the value is shown as typed, not as converted, one problem per variable', () => {
    const error = failure({ KAFKA_GROUP_CONCURRENCY: 'abc', PORT: '-1' }) as EnvironmentError;
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error.problems).toHaveLength(2);
    expect(error.problems.find((p) => p.startsWith('KAFKA_GROUP_CONCURRENCY='))).toMatch(
      /^KAFKA_GROUP_CONCURRENCY="abc": /,
    );
    expect(error.problems.find((p) => p.startsWith('PORT='))).toMatch(/^PORT="-1": /);
  });

  test('an unknown LOG_LEVEL is rejected naming it', () => {
    expect(failure({ LOG_LEVEL: 'trace' }).message).toContain('LOG_LEVEL="trace"');
  });

  test('an empty variable (VAR= in a .env file) means not set: the default applies', () => {
    const environment = validateEnvironment({ AIRNAV_GROUP_ID: '', PORT: '', KAFKA_FROM_BEGINNING: '' });
    expect(environment.AIRNAV_GROUP_ID).toBe('airnav');
    expect(environment.PORT).toBe(3000);
    expect(environment.KAFKA_FROM_BEGINNING).toBe(true);
  });

  test.each([
    ['TRUE', true],
    ['yes', true],
    ['0', false],
    ['No', false],
  ])('KAFKA_FROM_BEGINNING=%s reads as %s', (raw, expected) => {
    expect(validateEnvironment({ KAFKA_FROM_BEGINNING: raw }).KAFKA_FROM_BEGINNING).toBe(expected);
  });

  test('an unknown boolean spelling is rejected naming the variable', () => {
    expect(failure({ KAFKA_FROM_BEGINNING: 'maybe' }).message).toContain('KAFKA_FROM_BEGINNING="maybe"');
  });

  test('every invalid variable is reported at once', () => {
    const message = failure({ PORT: 'x', KAFKA_BROKERS: 'nope' }).message;
    expect(message).toContain('PORT=');
    expect(message).toContain('KAFKA_BROKERS="nope"');
  });
});

describe('validateEnvironment: SASL and TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'env-spec-'));
  const ca = join(dir, 'ca.pem');
  const cert = join(dir, 'client.pem');
  const key = join(dir, 'client-key.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n');
  writeFileSync(cert, '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n');
  writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const PASSWORD = 'pw-that-must-never-show';

  test('defaults: no SASL, no TLS, certificates verified when TLS is on', () => {
    const environment = validateEnvironment({});
    expect(environment).toMatchObject({
      KAFKA_SASL_MECHANISM: '',
      KAFKA_SSL: false,
      KAFKA_SSL_REJECT_UNAUTHORIZED: true,
    });
    expect(kafkaSecurityOf((name) => environment[name])).toEqual({});
  });

  test.each([
    ['PLAIN', 'plain'],
    ['scram-sha-256', 'scram-sha-256'],
    ['SCRAM-SHA-512', 'scram-sha-512'],
  ])(
    'KAFKA_SASL_MECHANISM=%s over TLS with a CA file becomes kafkajs ssl and sasl options',
    (given, mechanism) => {
      const environment = validateEnvironment({
        KAFKA_SASL_MECHANISM: given,
        KAFKA_SASL_USERNAME: 'svc-flights',
        KAFKA_SASL_PASSWORD: PASSWORD,
        KAFKA_SSL: 'true',
        KAFKA_SSL_CA_FILE: ca,
      });
      expect(kafkaSecurityOf((name) => environment[name])).toEqual({
        ssl: { rejectUnauthorized: true, ca: [readFileSync(ca, 'utf8')] },
        sasl: { mechanism, username: 'svc-flights', password: PASSWORD },
      });
    },
  );

  test('mutual TLS: certificate and key files are read', () => {
    const environment = validateEnvironment({
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: ca,
      KAFKA_SSL_CERT_FILE: cert,
      KAFKA_SSL_KEY_FILE: key,
      KAFKA_SSL_REJECT_UNAUTHORIZED: 'false',
    });
    expect(kafkaSecurityOf((name) => environment[name]).ssl).toEqual({
      rejectUnauthorized: false,
      ca: [readFileSync(ca, 'utf8')],
      cert: readFileSync(cert, 'utf8'),
      key: readFileSync(key, 'utf8'),
    });
  });

  test.each([['KAFKA_SASL_USERNAME'], ['KAFKA_SASL_PASSWORD']])(
    'a mechanism without %s fails naming it',
    (missing) => {
      const raw: Record<string, string> = {
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: 'svc-flights',
        KAFKA_SASL_PASSWORD: PASSWORD,
      };
      delete raw[missing];
      const { message } = failure(raw);
      expect(message).toContain(`${missing} is required with KAFKA_SASL_MECHANISM=scram-sha-512`);
      expect(message).not.toContain(PASSWORD);
    },
  );

  test('an unknown mechanism fails naming the variable, never showing the password', () => {
    const { message } = failure({
      KAFKA_SASL_MECHANISM: 'gssapi',
      KAFKA_SASL_USERNAME: 'svc-flights',
      KAFKA_SASL_PASSWORD: PASSWORD,
    });
    expect(message).toContain('KAFKA_SASL_MECHANISM="gssapi"');
    expect(message).not.toContain(PASSWORD);
  });

  test('an invalid password value is reported hidden', () => {
    const { message } = failure({
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 42,
    });
    expect(message).toContain('KAFKA_SASL_PASSWORD=(hidden)');
    expect(message).not.toContain('42');
  });

  test('KAFKA_ADMIN_TOKEN: empty (admin endpoints off) or 16+ characters, never shown when refused', () => {
    expect(validateEnvironment({}).KAFKA_ADMIN_TOKEN).toBe('');
    expect(validateEnvironment({ KAFKA_ADMIN_TOKEN: 'x'.repeat(16) }).KAFKA_ADMIN_TOKEN).toBe('x'.repeat(16));
    const { message } = failure({ KAFKA_ADMIN_TOKEN: 'short-secret' });
    expect(message).toContain('KAFKA_ADMIN_TOKEN=(hidden)');
    expect(message).toContain('KAFKA_ADMIN_TOKEN must be empty (admin endpoints off) or 16+ characters');
    expect(message).not.toContain('short-secret');
  });

  test('credentials without a mechanism fail (they would be silently ignored)', () => {
    const { message } = failure({ KAFKA_SASL_USERNAME: 'svc-flights', KAFKA_SASL_PASSWORD: PASSWORD });
    expect(message).toContain('KAFKA_SASL_USERNAME is set but KAFKA_SASL_MECHANISM is empty');
    expect(message).not.toContain(PASSWORD);
  });

  test.each([['KAFKA_SSL_CA_FILE'], ['KAFKA_SSL_CERT_FILE'], ['KAFKA_SSL_KEY_FILE']])(
    'an unreadable %s fails naming the variable and the path',
    (variable) => {
      const missing = join(dir, 'missing.pem');
      const raw = {
        KAFKA_SSL: 'true',
        KAFKA_SSL_CERT_FILE: cert,
        KAFKA_SSL_KEY_FILE: key,
        [variable]: missing,
      };
      expect(failure(raw).message).toContain(
        `${variable}=${JSON.stringify(missing)}: cannot read the file (ENOENT)`,
      );
    },
  );

  test('a certificate without its key (or the reverse) fails naming both', () => {
    expect(failure({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: cert }).message).toContain(
      'KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together',
    );
    expect(failure({ KAFKA_SSL: 'true', KAFKA_SSL_KEY_FILE: key }).message).toContain(
      'KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together',
    );
  });

  test('TLS files with KAFKA_SSL off fail instead of connecting in plain text', () => {
    expect(failure({ KAFKA_SSL_CA_FILE: ca }).message).toContain(
      'KAFKA_SSL_CA_FILE is set but KAFKA_SSL is false',
    );
  });

  test('a file that disappears after validation fails naming the variable when it is read', () => {
    const gone = join(dir, 'gone.pem');
    writeFileSync(gone, 'x');
    const environment = validateEnvironment({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: gone });
    rmSync(gone);
    expect(() => kafkaSecurityOf((name) => environment[name])).toThrow(
      `KAFKA_SSL_CA_FILE=${JSON.stringify(gone)}: cannot read the file (ENOENT)`,
    );
  });
});
