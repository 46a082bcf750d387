import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import net from 'node:net';
import { kafkajsInternal } from '../kafkajs.js';

/**
 * kafkajs's Broker (the library's instance, with the fixed Connection, and the installed modules as released) whose
 * broker is down: its fetch connection found it gone once, then each reconnect attempt does what
 * `brokerPool.connectBroker` does (connect, refused, disconnect). The count of 'connect' listeners on the fetch
 * connection's socket after N attempts. A real socket on 127.0.0.1: no broker needed.
 */
const released = createRequire(import.meta.url);
const ReleasedBroker = released('kafkajs/src/broker/index.js');
const ReleasedPool = released('kafkajs/src/network/connectionPool.js');
const FixedBroker = kafkajsInternal('src/broker/index.js');
const FixedPool = kafkajsInternal('src/network/connectionPool.js');
const { createLogger, LEVELS } = kafkajsInternal('src/loggers/index.js');
const quiet = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} });

/** Nothing listens on port 1 (privileged, never bound here): every connection is refused at once. */
const CLOSED = { host: '127.0.0.1', port: 1 };
const ATTEMPTS = 20;

/**
 * A broker that is down: its fetch connection found it gone once, then `ATTEMPTS` reconnect attempts. Returns the
 * sockets each of its two connections opened, and the fetch socket's 'connect' listeners before the attempts.
 */
async function reconnectWhileDown(
  Broker: new (options: object) => any,
  ConnectionPool: new (options: object) => any,
) {
  const sockets = { general: [] as net.Socket[], fetch: [] as net.Socket[], fetchListenersBefore: 0 };
  const connectionPool = new ConnectionPool({
    ...CLOSED,
    logger: quiet,
    clientId: 'connection-spec',
    connectionTimeout: 1_000,
    requestTimeout: 1_000,
    enforceRequestTimeout: true,
    maxInFlightRequests: null,
  });
  connectionPool.pool.forEach((connection: { socketFactory: unknown }, index: number) => {
    connection.socketFactory = ({
      host,
      port,
      onConnect,
    }: {
      host: string;
      port: number;
      onConnect: () => void;
    }) => {
      const socket = net.connect({ host, port }, onConnect);
      (index === 1 ? sockets.fetch : sockets.general).push(socket);
      return socket;
    };
  });
  const broker = new Broker({ connectionPool, logger: quiet, nodeId: 2 });
  await expect(connectionPool.getConnection(1)).rejects.toThrow(/ECONNREFUSED/);
  sockets.fetchListenersBefore = sockets.fetch[0].listenerCount('connect');
  // What brokerPool.connectBroker does per attempt: connect (the general connection), refused, disconnect.
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    await expect(broker.connect()).rejects.toThrow(/ECONNREFUSED/);
    await broker.disconnect();
  }
  return sockets;
}

const connectListeners = (sockets: net.Socket[]) => sockets.map((socket) => socket.listenerCount('connect'));

describe('the carried Connection: no listener per reconnect attempt on a closed socket', () => {
  it('kafkajs 2.2.4 as released adds a "connect" listener per attempt to the closed fetch socket (kept to show the leak)', async () => {
    const sockets = await reconnectWhileDown(ReleasedBroker, ReleasedPool);
    expect(sockets.fetch).toHaveLength(1);
    expect(sockets.general).toHaveLength(ATTEMPTS);
    // One more per attempt, for as long as the broker stays down (Node warns from 11).
    expect(connectListeners(sockets.fetch)[0] - sockets.fetchListenersBefore).toBe(ATTEMPTS);
  });

  it('fixed: no closed socket gains one, whatever the number of attempts', async () => {
    const sockets = await reconnectWhileDown(FixedBroker, FixedPool);
    expect(sockets.fetch).toHaveLength(1);
    expect(sockets.general).toHaveLength(ATTEMPTS);
    expect(sockets.fetch[0].destroyed).toBe(true);
    // What every socket that never connected keeps: the connect callback and Node's deferred first read.
    const neverConnected = sockets.fetchListenersBefore;
    expect(neverConnected).toBeLessThanOrEqual(2);
    expect(connectListeners([...sockets.fetch, ...sockets.general])).toEqual(
      Array.from({ length: ATTEMPTS + 1 }, () => neverConnected),
    );
  });
});
