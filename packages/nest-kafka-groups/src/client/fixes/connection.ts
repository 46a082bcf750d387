import type { CarriedFix } from '../kafkajs-loader.js';

interface Connection {
  socket?: { destroyed: boolean } | null;
  disconnect(): Promise<boolean>;
}

type ConnectionClass = new (options: object) => Connection;

/**
 * Extends kafkajs 2.2.4's network/connection: `disconnect()` ends and unrefs the connection's last socket, also one
 * that already closed (a refused or reset connection). Node's `socket.unref()` on a socket without a handle waits
 * for a 'connect' event that a closed socket never emits: one listener more per call. A broker's pool has two
 * connections, and each reconnect attempt to a broker that is down disconnects both (`brokerPool.connectBroker`),
 * while it connects only the first: the other one's closed socket gains a listener per attempt for as long as the
 * broker stays down (Node's MaxListenersExceededWarning at 11). A closed socket is dropped instead; nothing else
 * uses the socket of a disconnected connection, and the next connect() makes a new one.
 */
export const connectionFix: CarriedFix = {
  module: 'src/network/connection.js',
  sha256: '2a993b2e74421ca6d846efd59e4ba74b11100dbe7d40d0f52ea3218e917aafdd',
  create: (_require, released) => droppingClosedSockets(released() as ConnectionClass),
};

export function droppingClosedSockets(Released: ConnectionClass): ConnectionClass {
  return class Connection extends Released {
    override disconnect(): Promise<boolean> {
      if (this.socket?.destroyed) this.socket = null;
      return super.disconnect();
    }
  };
}
