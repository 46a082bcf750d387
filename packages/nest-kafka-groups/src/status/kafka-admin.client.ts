import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { brokerConnectivity } from '../client/broker-connectivity.js';
import { createKafkaClient } from '../client/kafka-client.factory.js';
import type { Admin, Kafka } from '../client/kafkajs.js';
import {
  authenticationFailureOf,
  recentAuthenticationFailure,
  securityFailures,
  securityIdentityOf,
} from '../client/security-failures.js';
import { KAFKA_MODULE_OPTIONS } from '../kafka.constants.js';
import type { KafkaModuleOptions } from '../kafka.options.js';
import { KafkaShutdown } from '../shutdown/kafka-shutdown.js';

/**
 * Admin calls for health and status must answer fast: one quick retry, then the caller's deadline decides. The same
 * for connecting (kafkajs connects with its client's retry, not the admin's): with the broker down, a connection
 * attempt ends about when its call's deadline does, instead of retrying for a minute beside the next ones.
 */
const ADMIN_RETRY = { retries: 1, initialRetryTime: 100, maxRetryTime: 1_000 };

/** An admin call (health, status, metrics) did not answer within its deadline; the message names the call. */
export class KafkaAdminTimeoutError extends Error {
  override name = 'KafkaAdminTimeoutError';
}

/** An admin call was refused or cut short because the application is shutting down. */
export class KafkaAdminClosedError extends Error {
  override name = 'KafkaAdminClosedError';
}

/**
 * One lazily connected kafkajs admin client shared by health, status and metrics. Every call has a deadline; a
 * failed or timed-out call drops the connection so the next call starts from a fresh one (a broker that went away
 * and came back is then found again at once).
 */
@Injectable()
export class KafkaAdminClient implements OnApplicationShutdown {
  private readonly logger = new Logger(KafkaAdminClient.name);
  private admin?: Promise<Admin>;
  /** The client behind each connection promise, to disconnect it while it is still connecting. */
  private readonly clients = new WeakMap<Promise<Admin>, Admin>();
  private closed = false;
  /** Ends the calls in flight at shutdown, so no caller (a page's sample, a health check) outlives the application. */
  private readonly cancels = new Set<() => void>();

  private readonly kafka: Kafka;

  constructor(
    @Inject(KAFKA_MODULE_OPTIONS) private readonly options: KafkaModuleOptions,
    private readonly shutdown: KafkaShutdown,
  ) {
    this.kafka = createKafkaClient({ ...options, clientRetry: ADMIN_RETRY });
  }

  /** Runs `fn` with the connected admin; rejects after `timeoutMs` (the call itself is abandoned, not aborted). */
  async run<T>(what: string, timeoutMs: number, fn: (admin: Admin) => Promise<T>): Promise<T> {
    if (this.closed)
      throw new KafkaAdminClosedError(
        `${what}: the Kafka admin client is closed (application shutting down)`,
      );
    const admin = this.connected();
    let timer: NodeJS.Timeout | undefined;
    let cancel!: () => void;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // On a loaded host a refused connection can outlast the deadline: the outage it met says why.
        const outages = brokerConnectivity.describeOutages();
        const why = outages ? `; ${outages}` : '';
        reject(new KafkaAdminTimeoutError(`${what}: no answer from the broker within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      cancel = () =>
        reject(new KafkaAdminClosedError(`${what}: cut short, the application is shutting down`));
    });
    this.cancels.add(cancel);
    try {
      return await Promise.race([admin.then(fn), deadline]);
    } catch (error) {
      this.reset(admin);
      // A call that got no answer while kafkajs meets a wrong password or certificate: that is why.
      const security =
        authenticationFailureOf(error, securityIdentityOf(this.options)) ??
        (error instanceof KafkaAdminTimeoutError ? recentAuthenticationFailure() : undefined);
      if (!security) throw error;
      securityFailures.report(security, `${what} fails`);
      throw security;
    } finally {
      clearTimeout(timer);
      this.cancels.delete(cancel);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    for (const cancel of this.cancels) cancel();
    const admin = this.admin;
    this.admin = undefined;
    if (admin) {
      // At once, not after the connection settled: the disconnect also ends a connect still retrying.
      const closing = this.clients.get(admin)!.disconnect();
      await this.shutdown.within('Kafka admin client: disconnecting', closing);
    }
  }

  private connected(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin({ retry: ADMIN_RETRY });
      const connecting = admin.connect().then(() => admin);
      // A rejected connection is reported to the caller of run(); this handler only avoids an unhandled rejection.
      connecting.catch(() => undefined);
      this.clients.set(connecting, admin);
      this.admin = connecting;
    }
    return this.admin;
  }

  private reset(failed: Promise<Admin>): void {
    if (this.admin !== failed) return;
    this.admin = undefined;
    this.clients
      .get(failed)!
      .disconnect()
      .catch((error: unknown) => this.logger.debug(`Dropping the admin connection: ${String(error)}`));
  }
}
