import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import net from 'node:net';
import { KafkaConnectCancelledError } from '../../errors/kafka-connect-cancelled.error.js';
import { kafkajsInternal } from '../kafkajs.js';

/**
 * kafkajs's Cluster (the library's instance, with the fixed BrokerPool, and the installed module as released)
 * connecting to a port where nothing listens, then disconnected while its connect loop waits between tries. The
 * socket factory counts the connections each one opens. A real socket on 127.0.0.1: no broker needed.
 */
const ReleasedCluster = createRequire(import.meta.url)('kafkajs/src/cluster/index.js');
const FixedCluster = kafkajsInternal('src/cluster/index.js');
const { createLogger, LEVELS } = kafkajsInternal('src/loggers/index.js');
const quiet = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} });

/** Nothing listens on port 1 (privileged, never bound here): every connection is refused at once. */
const CLOSED = '127.0.0.1:1';
/** Tries about 100 ms apart, 12 of them: about a second and a half in all. */
const RETRY = { initialRetryTime: 100, maxRetryTime: 150, retries: 12, factor: 0, multiplier: 1 };

function cluster(Cluster: new (options: object) => any) {
  const sockets = { opened: 0 };
  const instance = new Cluster({
    logger: quiet,
    brokers: [CLOSED],
    clientId: 'broker-pool-spec',
    connectionTimeout: 1_000,
    retry: RETRY,
    socketFactory: ({ host, port, onConnect }: { host: string; port: number; onConnect: () => void }) => {
      sockets.opened++;
      return net.connect({ host, port }, onConnect);
    },
  });
  return { cluster: instance, sockets };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('BrokerPool: a disconnect ends the connect loop (kafkajs#1147, #1174)', () => {
  it('fixed: the pending connect rejects at once with KafkaConnectCancelledError and nothing connects again', async () => {
    const { cluster: fixed, sockets } = cluster(FixedCluster);
    const connecting = fixed.connect().then(
      () => 'connected',
      (error: unknown) => error,
    );
    await sleep(250);
    expect(sockets.opened).toBeGreaterThan(0);
    const disconnectedAt = Date.now();
    await fixed.disconnect();
    const error = await connecting;
    expect(Date.now() - disconnectedAt).toBeLessThan(100);
    expect(error).toBeInstanceOf(KafkaConnectCancelledError);
    expect((error as Error).message).toBe('Connecting to 127.0.0.1:1 cancelled: the client was disconnected');
    expect((error as { retriable?: boolean }).retriable).toBe(false);
    const opened = sockets.opened;
    await sleep(500);
    expect(sockets.opened).toBe(opened);
  });

  it('fixed: a connect after the disconnect runs a loop of its own, with the released delays and retry count', async () => {
    const { cluster: fixed, sockets } = cluster(FixedCluster);
    await fixed.disconnect();
    const started = Date.now();
    const error = await fixed.connect().catch((e: unknown) => e);
    expect((error as Error).name).toBe('KafkaJSNumberOfRetriesExceeded');
    expect(sockets.opened).toBe(RETRY.retries + 1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(RETRY.retries * RETRY.initialRetryTime - 50);
  });

  it('released: the loop goes on after the disconnect, opening new connections until its retries run out', async () => {
    const { cluster: released, sockets } = cluster(ReleasedCluster);
    const connecting = released.connect().catch((e: unknown) => e);
    await sleep(250);
    await released.disconnect();
    const opened = sockets.opened;
    await sleep(500);
    expect(sockets.opened).toBeGreaterThan(opened);
    expect(((await connecting) as Error).name).toBe('KafkaJSNumberOfRetriesExceeded');
  });
});
