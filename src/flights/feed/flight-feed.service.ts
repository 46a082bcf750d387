import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Environment } from '../../config/environment.js';
import { KafkaProducer, type KafkaOutgoingMessage } from 'nest-kafka-groups';
import { FlightSimulator } from './flight-simulator.js';

const MIN_TICK_MS = 50;
/** A slow broker does not make the feed burst afterwards: at most this many seconds of backlog are caught up. */
const MAX_BACKLOG_SECONDS = 2;
const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * The simulated live feed (FEED_ENABLED): FEED_AIRCRAFT aircraft report their positions, FEED_RATE_PER_SEC
 * messages a second to each flight topic, keyed by `icao24` so one aircraft's reports stay in order on one partition.
 * Starts once the application is initialized (producer connected, topics created) and stops before the producer
 * disconnects.
 */
@Injectable()
export class FlightFeedService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(FlightFeedService.name);
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  private lastTick = 0;
  private due = 0;
  private lastErrorLog = 0;
  private sent = 0;
  private failedSends = 0;

  constructor(
    private readonly producer: KafkaProducer,
    private readonly config: ConfigService<Environment, true>,
  ) {}

  /** Messages produced to each topic so far, and send failures (for logs and tests). */
  get stats(): { running: boolean; sent: number; failedSends: number } {
    return { running: this.timer !== undefined, sent: this.sent, failedSends: this.failedSends };
  }

  onApplicationBootstrap(): void {
    if (this.config.get('FEED_ENABLED', { infer: true })) this.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  start(): void {
    if (this.timer) return;
    const rate = this.config.get('FEED_RATE_PER_SEC', { infer: true });
    const topics = [
      this.config.get('AIRNAV_TOPIC', { infer: true }),
      this.config.get('FLIGHT24_TOPIC', { infer: true }),
    ];
    const simulator = new FlightSimulator(this.config.get('FEED_AIRCRAFT', { infer: true }));
    const tickMs = Math.max(MIN_TICK_MS, Math.floor(1000 / rate));
    this.lastTick = performance.now();
    this.due = 0;
    this.timer = setInterval(() => this.tick(simulator, rate, topics), tickMs);
    this.logger.log(
      `Flight feed on: ${simulator.size} aircraft, ${rate} message(s)/s to each of ${topics.join(' and ')}`,
    );
  }

  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    this.logger.log(`Flight feed off after ${this.sent} message(s) to each topic`);
  }

  private tick(simulator: FlightSimulator, rate: number, topics: string[]): void {
    const now = performance.now();
    this.due = Math.min(this.due + ((now - this.lastTick) / 1000) * rate, rate * MAX_BACKLOG_SECONDS);
    this.lastTick = now;
    // One send at a time: while the broker is slow the backlog grows (bounded) instead of the requests.
    if (this.inFlight || this.due < 1) return;
    const count = Math.floor(this.due);
    this.due -= count;
    const messages: KafkaOutgoingMessage[] = Array.from({ length: count }, () => {
      const position = simulator.report();
      return { key: position.icao24, value: position };
    });
    this.inFlight = Promise.all(topics.map((topic) => this.producer.sendMany(topic, messages)))
      .then(() => {
        this.sent += count;
      })
      .catch((error: Error) => {
        this.failedSends++;
        if (Date.now() - this.lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
          this.lastErrorLog = Date.now();
          this.logger.warn(
            `Flight feed could not send (${this.failedSends} failure(s) so far): ${error.message}`,
          );
        }
      })
      .finally(() => {
        this.inFlight = undefined;
      });
  }
}
