import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { createRequire } from 'node:module';
import net from 'node:net';
import { KafkaConnectCancelledError } from '../../errors/kafka-connect-cancelled.error.js';
import { kafkajsInternal } from '../kafkajs.js';

/**
 * kafkajs's Cluster (the library's instance, with the fixed BrokerPool, and the installed module as released)
 * connecting to a port where nothing listens, then disconnected while its connect loop waits between tries. The
 * socket factory counts the connections each one opens; the logger counts the tries that failed. A real socket on
 * 127.0.0.1 (no broker needed) and fake timers: the waits between tries pass only when the spec moves the clock, so
 * nothing here depends on how fast the machine is.
 */
const ReleasedCluster = createRequire(import.meta.url)('kafkajs/src/cluster/index.js');
const FixedCluster = kafkajsInternal('src/cluster/index.js');
const { createLogger, LEVELS } = kafkajsInternal('src/loggers/index.js');

/** Nothing listens on port 1 (privileged, never bound here): every connection is refused at once. */
const CLOSED = '127.0.0.1:1';
/** Tries 100 ms apart (no jitter), 12 retries after the first try. */
const RETRY = { initialRetryTime: 100, maxRetryTime: 100, retries: 12, factor: 0, multiplier: 1 };
const FAILED_TRY = 'Failed to connect to seed broker';

function cluster(Cluster: new (options: object) => any) {
  const seen = { opened: 0, failed: 0 };
  const waiters = new Set<() => void>();
  const changed = () => waiters.forEach((check) => check());
  const instance = new Cluster({
    logger: createLogger({
      level: LEVELS.ERROR,
      logCreator:
        () =>
        ({ log }: { log: { message: string } }) => {
          if (!log.message.startsWith(FAILED_TRY)) return;
          seen.failed++;
          changed();
        },
    }),
    brokers: [CLOSED],
    clientId: 'broker-pool-spec',
    connectionTimeout: 1_000,
    retry: RETRY,
    socketFactory: ({ host, port, onConnect }: { host: string; port: number; onConnect: () => void }) => {
      seen.opened++;
      changed();
      return net.connect({ host, port }, onConnect);
    },
  });
  /** Resolves once `condition` holds: checked at every connection opened and every try that failed. */
  const until = (condition: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!condition()) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  return { cluster: instance, seen, until };
}

/** A few turns of the event loop: long enough for a timer that fired to reach the socket factory. */
const turns = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};
const PENDING = Symbol('pending');

describe('BrokerPool: a disconnect ends the connect loop (kafkajs#1147, #1174)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('fixed: the pending connect rejects at once with KafkaConnectCancelledError and nothing connects again', async () => {
    const { cluster: fixed, seen, until } = cluster(FixedCluster);
    const connecting = fixed.connect().then(
      () => 'connected',
      (error: unknown) => error,
    );
    await until(() => seen.failed === 1); // the loop now waits for its next try
    await fixed.disconnect();
    // Settled without the clock moving: the disconnect itself ended the wait.
    const error = await Promise.race([connecting, turns().then(() => PENDING)]);
    expect(error).toBeInstanceOf(KafkaConnectCancelledError);
    expect((error as Error).message).toBe('Connecting to 127.0.0.1:1 cancelled: the client was disconnected');
    expect((error as { retriable?: boolean }).retriable).toBe(false);
    // Every try the loop had left would have come by now.
    await jest.advanceTimersByTimeAsync(RETRY.retries * RETRY.maxRetryTime);
    await turns();
    expect(seen.opened).toBe(1);
  });

  it('fixed: a connect after the disconnect runs a loop of its own, with the released delays and retry count', async () => {
    const { cluster: fixed, seen, until } = cluster(FixedCluster);
    await fixed.disconnect();
    const started = Date.now();
    const connecting = fixed.connect().catch((e: unknown) => e);
    for (let tries = 1; tries <= RETRY.retries; tries++) {
      await until(() => seen.failed === tries);
      await jest.advanceTimersByTimeAsync(RETRY.initialRetryTime - 1);
      await turns();
      expect(seen.opened).toBe(tries); // not a moment before its delay
      await jest.advanceTimersByTimeAsync(1);
      await turns();
      expect(seen.opened).toBe(tries + 1); // and not a moment after it
    }
    await until(() => seen.failed === RETRY.retries + 1);
    const error = await Promise.race([connecting, turns().then(() => PENDING)]);
    expect((error as Error).name).toBe('KafkaJSNumberOfRetriesExceeded');
    expect(seen.opened).toBe(RETRY.retries + 1);
    expect(Date.now() - started).toBe(RETRY.retries * RETRY.initialRetryTime);
  });

  it('released: the loop goes on after the disconnect, opening new connections until its retries run out', async () => {
    const { cluster: released, seen, until } = cluster(ReleasedCluster);
    let settled = false;
    const connecting = released.connect().catch((e: unknown) => e);
    void connecting.then(() => (settled = true));
    await until(() => seen.failed === 1);
    await released.disconnect();
    await jest.advanceTimersByTimeAsync(RETRY.initialRetryTime);
    await turns();
    expect(seen.opened).toBe(2);
    for (let tries = 2; !settled; tries++) {
      await Promise.race([until(() => seen.failed === tries), connecting]);
      await jest.advanceTimersByTimeAsync(RETRY.maxRetryTime);
    }
    expect(((await connecting) as Error).name).toBe('KafkaJSNumberOfRetriesExceeded');
    expect(seen.opened).toBe(RETRY.retries + 1);
  });
});
