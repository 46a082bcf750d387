import { describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { KafkaAuthenticationError } from '../errors/kafka-authentication.error.js';
import { KafkaAuthorizationError } from '../errors/kafka-authorization.error.js';
import {
  authenticationFailureOf,
  authorizationFailureOf,
  isSecurityLogLine,
  SecurityFailureReport,
  securityIdentityOf,
} from './security-failures.js';

/** kafkajs's error shapes (name, type, code, broker, cause), as its retrier and consumer nest them. */
function kafkajsError(name: string, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name, ...extra });
}

const SCRAM = securityIdentityOf({
  brokers: ['b1:9093', 'b2:9093'],
  ssl: true,
  sasl: { mechanism: 'scram-sha-512', username: 'svc-flights', password: 'the-password' },
});

describe('securityIdentityOf', () => {
  test('SASL over TLS names protocol, mechanism and user, never the password', () => {
    expect(SCRAM).toEqual({
      brokers: 'b1:9093,b2:9093',
      mechanism: 'SASL_SSL, SCRAM-SHA-512',
      principal: 'user svc-flights',
    });
    expect(JSON.stringify(SCRAM)).not.toContain('the-password');
  });

  test('SASL without TLS, TLS alone and plaintext', () => {
    expect(
      securityIdentityOf({ brokers: ['b:1'], sasl: { mechanism: 'plain', username: 'u', password: 'p' } }),
    ).toMatchObject({ mechanism: 'SASL_PLAINTEXT, PLAIN', principal: 'user u' });
    expect(securityIdentityOf({ brokers: ['b:1'], ssl: true })).toMatchObject({ mechanism: 'SSL' });
    expect(securityIdentityOf({ brokers: ['b:1'] })).toMatchObject({
      mechanism: 'PLAINTEXT',
      principal: 'an anonymous client',
    });
  });

  test('a client certificate that cannot be parsed is still named as one', () => {
    expect(securityIdentityOf({ brokers: ['b:1'], ssl: { cert: 'not a pem' } })).toMatchObject({
      mechanism: 'SSL, client certificate',
      principal: 'a client certificate',
    });
  });
});

describe('authenticationFailureOf', () => {
  test('a SASL failure wrapped by the retrier is named with the configured brokers and mechanism', () => {
    const sasl = kafkajsError(
      'KafkaJSSASLAuthenticationError',
      'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
    );
    const wrapped = kafkajsError('KafkaJSNumberOfRetriesExceeded', sasl.message, { cause: sasl });
    const failure = authenticationFailureOf(wrapped, SCRAM);
    expect(failure).toBeInstanceOf(KafkaAuthenticationError);
    expect(failure!.message).toBe(
      'Kafka authentication failed at broker b1:9093,b2:9093 (SASL_SSL, SCRAM-SHA-512, user svc-flights): ' +
        'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
    );
  });

  test.each([
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'],
    ['CERT_HAS_EXPIRED', 'certificate has expired'],
  ])('a TLS failure (%s) names the broker that presented the certificate', (code, reason) => {
    const error = kafkajsError('KafkaJSConnectionError', `Connection error: ${reason}`, {
      code,
      broker: 'b2:9093',
    });
    expect(authenticationFailureOf(error, SCRAM)?.message).toBe(
      `Kafka authentication failed at broker b2:9093 (SASL_SSL, SCRAM-SHA-512, user svc-flights): TLS handshake failed: ${reason}`,
    );
  });

  test('a broker that is simply down is not an authentication failure', () => {
    const refused = kafkajsError('KafkaJSConnectionError', 'Connection error: connect ECONNREFUSED', {
      code: 'ECONNREFUSED',
    });
    expect(authenticationFailureOf(refused, SCRAM)).toBeUndefined();
  });
});

describe('a connection lost during the SASL handshake (a close, a broker restart) is not an authentication failure', () => {
  const reasons = [
    'Not connected',
    'Closed connection',
    'Connection closed by the server',
    'Connection timeout',
    'Connection error: read ECONNRESET',
    'Request SaslAuthenticate(key: 36, version: 2) timed out',
  ];

  test.each(reasons)('authenticationFailureOf: %s', (reason) => {
    const sasl = kafkajsError(
      'KafkaJSSASLAuthenticationError',
      `SASL SCRAM SHA512 authentication failed: ${reason}`,
    );
    expect(authenticationFailureOf(sasl, SCRAM)).toBeUndefined();
  });

  test.each(reasons)("kafkajs's line is printed at debug and no ERROR is reported: %s", (reason) => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      const line = `SASL SCRAM SHA512 authentication failed: ${reason}`;
      expect(isSecurityLogLine(line, { broker: 'b1:9093' }, SCRAM)).toBe(true);
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
    }
  });
});

describe('authorizationFailureOf', () => {
  const read = { operation: 'read', topics: ['live-flight-airnav'], groupId: 'airnav' };

  test("a topic denial names operation, topic, group and user (the issue's wording)", () => {
    // The consumer crash keeps only the message of the protocol error.
    const crash = kafkajsError(
      'KafkaJSNonRetriableError',
      'Not authorized to access topics: [Topic authorization failed]',
    );
    const failure = authorizationFailureOf(crash, SCRAM, read);
    expect(failure).toBeInstanceOf(KafkaAuthorizationError);
    expect(failure!.message).toBe(
      'not authorized to read topic live-flight-airnav in group airnav as user svc-flights',
    );
  });

  test('a group denial names the group', () => {
    const error = kafkajsError(
      'KafkaJSProtocolError',
      'Not authorized to access group: Group authorization failed',
      {
        type: 'GROUP_AUTHORIZATION_FAILED',
      },
    );
    expect(authorizationFailureOf(error, SCRAM, read)?.message).toBe(
      'not authorized to use group airnav as user svc-flights',
    );
  });

  test('a write denial inside an aggregate (createTopics, send) names the topic', () => {
    const inner = kafkajsError(
      'KafkaJSProtocolError',
      'Not authorized to access topics: [Topic authorization failed]',
      {
        type: 'TOPIC_AUTHORIZATION_FAILED',
      },
    );
    const aggregate = kafkajsError('KafkaJSAggregateError', 'Topic creation errors', { errors: [inner] });
    expect(
      authorizationFailureOf(aggregate, SCRAM, { operation: 'create', topics: ['a', 'a-dlt'] })?.message,
    ).toBe('not authorized to create topics a, a-dlt as user svc-flights');
  });

  test('"Failed to find group coordinator" is a group denial only right after the broker denied a group', () => {
    const notFound = kafkajsError('KafkaJSGroupCoordinatorNotFound', 'Failed to find group coordinator');
    expect(authorizationFailureOf(notFound, SCRAM, read)).toBeUndefined();
    isSecurityLogLine('Response FindCoordinator(key: 10, version: 2)', {
      error: 'Not authorized to access group: Group authorization failed',
    });
    expect(authorizationFailureOf(notFound, SCRAM, read)?.message).toBe(
      'not authorized to use group airnav as user svc-flights',
    );
  });

  test("a producer's denied InitProducerId names the topic it was writing", () => {
    const error = kafkajsError('KafkaJSProtocolError', 'Cluster authorization failed', {
      type: 'CLUSTER_AUTHORIZATION_FAILED',
    });
    expect(authorizationFailureOf(error, SCRAM, { operation: 'write', topics: ['t-dlt'] })?.message).toBe(
      'not authorized to write topic t-dlt as user svc-flights (an idempotent producer needs WRITE on a topic ' +
        'or IdempotentWrite on the cluster)',
    );
  });

  test('other errors are not authorization failures', () => {
    const rebalance = kafkajsError('KafkaJSProtocolError', 'The group is rebalancing', {
      type: 'REBALANCE_IN_PROGRESS',
    });
    expect(authorizationFailureOf(rebalance, SCRAM, read)).toBeUndefined();
  });
});

describe('isSecurityLogLine', () => {
  test("kafkajs's SASL failure line is reported at once, and names the broker of a later SASL error", () => {
    const identity = securityIdentityOf({
      brokers: ['b1:9093', 'b2:9093'],
      ssl: true,
      sasl: { mechanism: 'plain', username: 'svc-flights', password: 'pw' },
    });
    expect(
      isSecurityLogLine(
        'SASL PLAIN authentication failed: Authentication failed: Invalid username or password',
        { broker: 'b2:9093' },
        identity,
      ),
    ).toBe(true);
    const sasl = kafkajsError(
      'KafkaJSSASLAuthenticationError',
      'SASL PLAIN authentication failed: Authentication failed: Invalid username or password',
    );
    expect(authenticationFailureOf(sasl, identity)?.message).toBe(
      'Kafka authentication failed at broker b2:9093 (SASL_SSL, PLAIN, user svc-flights): ' +
        'Authentication failed: Invalid username or password',
    );
  });

  test.each([
    ['SASL PLAIN authentication failed: Authentication failed: Invalid username or password', true],
    ['Response SaslAuthenticate(key: 36, version: 1)', true],
    ['Connection error: self-signed certificate in certificate chain', true],
    ['Connection error: connect ECONNREFUSED 127.0.0.1:9092', false],
    ['Consumer has joined the group', false],
  ])('%s -> %p', (message, expected) => {
    expect(isSecurityLogLine(message, {})).toBe(expected);
  });
});

describe('SecurityFailureReport: one ERROR per principal and cause until it is resolved', () => {
  /** The broker's texts for one wrong SCRAM password: at a running connection's re-authentication, then at a login. */
  const reasons = [
    'Authentication failed during re-authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
    'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
  ];
  const failure = (broker: string, reason: string, principal = 'user svc-flights') =>
    new KafkaAuthenticationError(broker, 'SASL_SSL, SCRAM-SHA-512', principal, reason);

  function spyLogger() {
    const spies = {
      error: jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined),
      debug: jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined),
      log: jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined),
    };
    return { ...spies, restore: () => Object.values(spies).forEach((spy) => spy.mockRestore()) };
  }

  test("a password rotated while running (the broker's re-authentication, then each new login; at any broker): one ERROR, the rest at debug", () => {
    const logger = spyLogger();
    try {
      const report = new SecurityFailureReport();
      report.report(failure('b1:9093', reasons[0]), 'the clients retry with backoff');
      report.report(failure('b1:9093', reasons[1]), 'the clients retry with backoff');
      report.report(failure('b2:9093', reasons[1]), 'group airnav member 0 cannot connect');
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0]).toContain(reasons[0]);
      expect(logger.debug).toHaveBeenCalledTimes(2);
    } finally {
      logger.restore();
    }
  });

  test("through kafkajs's log lines: the two texts of one rotation give one ERROR", () => {
    const logger = spyLogger();
    try {
      const identity = securityIdentityOf({
        brokers: ['b1:9093'],
        ssl: true,
        sasl: { mechanism: 'scram-sha-512', username: 'svc-rotated', password: 'old' },
      });
      for (const reason of reasons) {
        isSecurityLogLine(
          `SASL SCRAM SHA512 authentication failed: ${reason}`,
          { broker: 'b1:9093' },
          identity,
        );
      }
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0]).toContain('user svc-rotated');
    } finally {
      logger.restore();
    }
  });

  test('another principal or another cause is an ERROR of its own', () => {
    const logger = spyLogger();
    try {
      const report = new SecurityFailureReport();
      report.report(failure('b1:9093', reasons[1]), 'retrying');
      report.report(failure('b1:9093', reasons[1], 'user svc-other'), 'retrying');
      report.report(failure('b1:9093', 'TLS handshake failed: certificate has expired'), 'retrying');
      expect(logger.error).toHaveBeenCalledTimes(3);
    } finally {
      logger.restore();
    }
  });

  test('resolved once: one line at LOG, and the same failure coming back is an ERROR again', () => {
    const logger = spyLogger();
    try {
      const report = new SecurityFailureReport();
      report.report(failure('b1:9093', reasons[0]), 'retrying');
      report.resolved(failure('b1:9093', reasons[1]));
      report.resolved(failure('b1:9093', reasons[1]));
      expect(logger.log).toHaveBeenCalledTimes(1);
      report.report(failure('b1:9093', reasons[1]), 'retrying');
      expect(logger.error).toHaveBeenCalledTimes(2);
    } finally {
      logger.restore();
    }
  });
});
