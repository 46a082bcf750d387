import { Injectable, Logger, type LoggerService } from '@nestjs/common';

/**
 * Terminus's logger for GET /health. Terminus logs every failed check at ERROR, but a 503 while the groups join or
 * the broker is away is the answer the endpoint exists to give: it is logged as a WARN, through the application's
 * logger, under Terminus's own context.
 */
@Injectable()
export class HealthCheckLogger implements LoggerService {
  private readonly logger = new Logger('HealthCheckService');

  log(message: unknown): void {
    this.logger.log(message);
  }

  error(message: unknown): void {
    this.logger.warn(message);
  }

  warn(message: unknown): void {
    this.logger.warn(message);
  }

  debug(message: unknown): void {
    this.logger.debug(message);
  }

  verbose(message: unknown): void {
    this.logger.verbose(message);
  }
}
