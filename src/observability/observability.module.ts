import { Module, type OnModuleInit } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { collectDefaultMetrics } from 'prom-client';
import { KafkaStatusModule } from 'nest-kafka-groups';
import { KafkaHealthModule } from 'nest-kafka-groups/health';
import { KafkaMetricsModule, KafkaMetricsService } from 'nest-kafka-groups/metrics';
import { KafkaUiModule } from 'nest-kafka-groups/ui';
import { HealthCheckLogger } from './health-check.logger.js';
import { HealthController } from './health.controller.js';
import { KafkaGroupsController } from './kafka-groups.controller.js';
import { MetricsController } from './metrics.controller.js';

/** The service's operational endpoints: GET /health, GET /kafka/groups, GET /kafka/ui (live page), GET /metrics. */
@Module({
  imports: [
    TerminusModule.forRoot({ logger: HealthCheckLogger }),
    KafkaHealthModule,
    KafkaStatusModule,
    KafkaMetricsModule,
    KafkaUiModule.forRoot(),
  ],
  controllers: [HealthController, KafkaGroupsController, MetricsController],
})
export class ObservabilityModule implements OnModuleInit {
  private defaultMetrics = false;

  constructor(private readonly metrics: KafkaMetricsService) {}

  onModuleInit(): void {
    if (this.defaultMetrics) return;
    this.defaultMetrics = true;
    // Process metrics (CPU, memory, event loop lag, GC) beside the Kafka ones, in the same registry.
    collectDefaultMetrics({ register: this.metrics.registry });
  }
}
