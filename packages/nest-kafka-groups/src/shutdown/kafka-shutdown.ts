import { Inject, Injectable, Logger } from '@nestjs/common';
import { KAFKA_MODULE_OPTIONS } from '../kafka.constants.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, type KafkaModuleOptions } from '../kafka.options.js';

/** Past the budget, a client's disconnect is still awaited this long: closing idle connections takes a few ms. */
export const CLOSE_FLOOR_MS = 1_000;

/**
 * The application's one shutdown budget, `shutdownTimeoutMs`: it starts when the first Kafka part begins to shut
 * down (the consumers' drain), and every later part (dead-letter producer, KafkaProducer, admin clients) waits only
 * for what is left of it. Nest runs those hooks one after another, so separate timeouts would add up; whatever
 * the broker does, the Kafka parts of a shutdown end within `shutdownTimeoutMs`, plus short bounded waits once it ran
 * out (a consumer's leave after it abandoned a hung handler, `CLOSE_FLOOR_MS` per later client) so that the clients
 * still close their connections instead of leaving them to keep the process alive.
 */
@Injectable()
export class KafkaShutdown {
  private readonly logger = new Logger('KafkaShutdown');
  private readonly budgetMs: number;
  private endsAt?: number;

  constructor(@Inject(KAFKA_MODULE_OPTIONS) options: KafkaModuleOptions) {
    this.budgetMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  }

  /** Milliseconds left of the budget; the first call starts it. */
  remainingMs(): number {
    this.endsAt ??= Date.now() + this.budgetMs;
    return Math.max(0, this.endsAt - Date.now());
  }

  /**
   * Waits for `work` until the budget runs out (or `CLOSE_FLOOR_MS`, if longer). Resolves true when it finished (or
   * failed: a failed disconnect is logged, not thrown), false when the budget ran out first; `work` is then
   * abandoned, not cancelled.
   */
  async within(what: string, work: Promise<unknown>): Promise<boolean> {
    const remaining = Math.max(this.remainingMs(), CLOSE_FLOOR_MS);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), remaining);
    });
    const result = await Promise.race([
      work.then(
        () => 'done' as const,
        (error: unknown) => {
          this.logger.warn(`${what} failed: ${error instanceof Error ? error.message : String(error)}`);
          return 'done' as const;
        },
      ),
      timedOut,
    ]);
    clearTimeout(timer);
    if (result === 'done') return true;
    this.logger.warn(
      `${what}: still waiting when shutdownTimeoutMs (${this.budgetMs} ms) ran out; abandoned`,
    );
    return false;
  }
}
