import net from 'node:net';
import tls from 'node:tls';
import { Logger } from '@nestjs/common';
import { isTlsFailure } from './security-failures.js';
import type { ISocketFactory } from './kafkajs.js';

/** How often a broker that stays unreachable is reported again. */
export const OUTAGE_SUMMARY_EVERY_MS = 30_000;
/** kafkajs's own socket keep-alive delay. */
const KEEP_ALIVE_DELAY_MS = 60_000;

interface Outage {
  since: number;
  failedAttempts: number;
  /** failedAttempts at the last summary. */
  summarizedAttempts: number;
  lastError: string;
}

/**
 * Tells the user when a broker goes away and comes back, in three kinds of lines instead of one ERROR per failed
 * connection attempt (several a second while a broker is down): one WARN when it becomes unreachable, a summary
 * every `summaryEveryMs` while it stays away, one line when a connection succeeds again. It sees every socket
 * the clients open, through the socket factory it gives them.
 */
export class BrokerConnectivity {
  private readonly logger = new Logger('KafkaBrokers');
  private readonly outages = new Map<string, Outage>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly summaryEveryMs = OUTAGE_SUMMARY_EVERY_MS) {}

  /** Brokers currently unreachable, for health details. */
  get unreachable(): string[] {
    return [...this.outages.keys()];
  }

  /**
   * The outages under way, for an error that a broker's absence explains (an admin call that got no answer in time
   * while its connections are refused): `broker 127.0.0.1:9092 unreachable for 3 s (connect ECONNREFUSED …)`.
   */
  describeOutages(): string | undefined {
    if (this.outages.size === 0) return undefined;
    const now = Date.now();
    return [...this.outages]
      .map(
        ([broker, outage]) =>
          `broker ${broker} unreachable for ${seconds(now - outage.since)} s (${outage.lastError})`,
      )
      .join('; ');
  }

  failed(broker: string, error: Error): void {
    // The broker answered but the TLS handshake failed: KafkaSecurity reports that, as what it is.
    if (isTlsFailure(error)) return;
    // A request written after this process ended the socket (a client closed while it was still connecting, as an
    // app closed right after init): nothing about the broker, whose real absence the next attempt shows.
    if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_WRITE_AFTER_END') return;
    const outage = this.outages.get(broker);
    if (outage) {
      outage.failedAttempts++;
      outage.lastError = error.message;
      return;
    }
    this.outages.set(broker, {
      since: Date.now(),
      failedAttempts: 1,
      summarizedAttempts: 0,
      lastError: error.message,
    });
    this.logger.warn(
      `Broker ${broker} unreachable (${error.message}); the clients keep retrying, ` +
        `a summary follows every ${Math.round(this.summaryEveryMs / 1000)} s while it lasts`,
    );
    this.timer ??= setInterval(() => this.summarize(), this.summaryEveryMs).unref();
  }

  connected(broker: string): void {
    const outage = this.outages.get(broker);
    if (!outage) return;
    this.forget(broker);
    this.logger.log(
      `Broker ${broker} reachable again after ${seconds(Date.now() - outage.since)} s ` +
        `(${outage.failedAttempts} failed connection attempt(s))`,
    );
  }

  /** kafkajs's default socket factory, reporting each socket's connection and failure here. */
  socketFactory(): ISocketFactory {
    return ({ host, port, ssl, onConnect }) => {
      const broker = `${host}:${port}`;
      const connected = () => {
        this.connected(broker);
        onConnect();
      };
      const socket = ssl
        ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, connected)
        : net.connect({ host, port }, connected);
      socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
      socket.once('error', (error) => this.failed(broker, error));
      return socket;
    };
  }

  private forget(broker: string): void {
    this.outages.delete(broker);
    if (this.outages.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private summarize(): void {
    const now = Date.now();
    for (const [broker, outage] of this.outages) {
      // Nothing tried it since the last summary: its clients are closed (an application that shut down); a client
      // that tries again reports the outage anew.
      if (outage.failedAttempts === outage.summarizedAttempts) {
        this.logger.debug(
          `Broker ${broker}: no connection attempt for ${seconds(this.summaryEveryMs)} s, no more summaries`,
        );
        this.forget(broker);
        continue;
      }
      outage.summarizedAttempts = outage.failedAttempts;
      this.logger.warn(
        `Broker ${broker} still unreachable after ${seconds(now - outage.since)} s ` +
          `(${outage.failedAttempts} failed connection attempt(s), last: ${outage.lastError})`,
      );
    }
  }
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}

/** One tracker per process: every client of every application reports to it, so an outage is told once. */
export const brokerConnectivity = new BrokerConnectivity();
