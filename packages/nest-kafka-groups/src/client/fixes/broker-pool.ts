import { KafkaConnectCancelledError } from '../../errors/kafka-connect-cancelled.error.js';
import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

type BrokerPoolClass = new (options: any) => any;

interface RetrySettings {
  maxRetryTime: number;
  initialRetryTime: number;
  factor: number;
  multiplier: number;
  retries: number;
}

interface BrokerPoolInternals {
  /** kafkajs's retry defaults (its test defaults under NODE_ENV=test, as the released retrier picks them). */
  defaults: RetrySettings;
  KafkaJSNumberOfRetriesExceeded: new (e: Error, options: object) => Error;
}

/**
 * Replaces kafkajs 2.2.4's cluster/brokerPool.js by a subclass of the released BrokerPool. Upstream connects to the
 * seed broker in a retry loop (the client's retry: about a minute by default) that nothing can stop: `disconnect()`
 * closes the sockets, but the loop's timer stays armed and its next try opens a new connection, so with the broker
 * down a closed producer, consumer or admin client keeps the process alive and logging until the retries run out
 * (kafkajs#1147, #1174). Here `disconnect()` ends every connect loop of the pool: its timer is cleared and the
 * pending `connect()` rejects with KafkaConnectCancelledError; a try that was connecting when it came is closed
 * again when it ends. The loop is the released one otherwise (same delays, same seed-broker rotation, same logs);
 * a `connect()` after the disconnect starts a loop of its own.
 */
export const brokerPoolFix: CarriedFix = {
  module: 'src/cluster/brokerPool.js',
  sha256: '9994863e891ac2ab243f27f941ef87893889f53d64aa580353fafbb8d11614c6',
  create: (require: KafkajsRequire, released: () => any) => {
    const defaults = (
      process.env.NODE_ENV === 'test' ? require('../retry/defaults.test') : require('../retry/defaults')
    ) as RetrySettings;
    const { KafkaJSNumberOfRetriesExceeded } = require('../errors');
    return createBrokerPool(released() as BrokerPoolClass, { defaults, KafkaJSNumberOfRetriesExceeded });
  },
};

/** One connect loop: cancelled by the pool's disconnect, which also wakes it from its wait between tries. */
interface ConnectLoop {
  cancelled: boolean;
  cancel(): void;
}

export function createBrokerPool(Released: BrokerPoolClass, internals: BrokerPoolInternals): BrokerPoolClass {
  const { defaults, KafkaJSNumberOfRetriesExceeded } = internals;

  return class BrokerPool extends Released {
    readonly connectRetry: RetrySettings;
    readonly connectLoops = new Set<ConnectLoop>();

    constructor(options: any) {
      super(options);
      this.connectRetry = { ...defaults, ...options.retry };
    }

    async connect(): Promise<void> {
      if (this.hasConnectedBrokers()) return;
      let wake: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      const loop: ConnectLoop = {
        cancelled: false,
        cancel() {
          this.cancelled = true;
          clearTimeout(timer);
          wake?.();
        },
      };
      this.connectLoops.add(loop);
      try {
        if (!this.seedBroker) await this.createSeedBroker();
        const { factor, multiplier, maxRetryTime, retries } = this.connectRetry;
        let retryTime = randomFromRetryTime(factor, this.connectRetry.initialRetryTime);
        for (let retryCount = 0; ; retryCount++) {
          if (loop.cancelled) throw this.cancelled();
          try {
            await this.seedBroker.connect();
            if (loop.cancelled) {
              // The disconnect came while this try was connecting: its socket is closed here, not left open.
              await this.seedBroker.disconnect();
              throw this.cancelled();
            }
            this.versions = this.seedBroker.versions;
            return;
          } catch (e: any) {
            if (loop.cancelled) throw e instanceof KafkaConnectCancelledError ? e : this.cancelled();
            if (e.name === 'KafkaJSConnectionError' || e.type === 'ILLEGAL_SASL_STATE') {
              // Connection builder will always rotate the seed broker
              await this.createSeedBroker();
              this.logger.error(
                `Failed to connect to seed broker, trying another broker from the list: ${e.message}`,
                { retryCount, retryTime },
              );
            } else {
              this.logger.error(e.message, { retryCount, retryTime });
            }
            if (!e.retriable) throw e;
            if (retryCount >= retries)
              throw new KafkaJSNumberOfRetriesExceeded(e, { retryCount, retryTime, cause: e.cause || e });
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, retryTime);
          });
          retryTime = Math.min(randomFromRetryTime(factor, retryTime) * multiplier, maxRetryTime);
        }
      } finally {
        this.connectLoops.delete(loop);
      }
    }

    async disconnect(): Promise<void> {
      for (const loop of this.connectLoops) loop.cancel();
      await super.disconnect();
    }

    cancelled(): KafkaConnectCancelledError {
      const broker = this.seedBroker?.connectionPool;
      const where = broker ? ` to ${broker.host}:${broker.port}` : '';
      return new KafkaConnectCancelledError(`Connecting${where} cancelled: the client was disconnected`);
    }
  };
}

/** kafkajs's retry delay: `retryTime` randomised by ±factor. */
function randomFromRetryTime(factor: number, retryTime: number): number {
  const delta = factor * retryTime;
  return Math.ceil(Math.random() * 2 * delta + retryTime - delta);
}
