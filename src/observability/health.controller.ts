import { Controller, Get } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import type { Environment } from '../config/environment.js';
import { KafkaHealthIndicator } from 'nest-kafka-groups/health';

/** GET /health: 200 when the broker answers and every consumer group runs joined; 503 with the details otherwise. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly kafka: KafkaHealthIndicator,
    private readonly config: ConfigService<Environment, true>,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    const timeoutMs = this.config.get('KAFKA_HEALTH_TIMEOUT_MS', { infer: true });
    return this.health.check([
      () => this.kafka.brokerCheck('kafka-broker', timeoutMs),
      () => this.kafka.groupsCheck('kafka-groups'),
    ]);
  }
}
