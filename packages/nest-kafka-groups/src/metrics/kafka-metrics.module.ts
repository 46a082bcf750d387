import { type DynamicModule, Module } from '@nestjs/common';
import { KafkaStatusModule } from '../status/kafka-status.module.js';
import {
  KAFKA_METRICS_OPTIONS,
  type KafkaMetricsOptions,
  KafkaMetricsService,
} from './kafka-metrics.service.js';

/**
 * Prometheus metrics of the consumer groups; serve `KafkaMetricsService.metrics()` from an endpoint of your own.
 * Import it once (it sets the transport's observer); `forRoot` takes a registry of yours, a name prefix or buckets.
 */
@Module({
  imports: [KafkaStatusModule],
  providers: [KafkaMetricsService],
  exports: [KafkaMetricsService],
})
export class KafkaMetricsModule {
  static forRoot(options: KafkaMetricsOptions = {}): DynamicModule {
    return {
      module: KafkaMetricsModule,
      providers: [{ provide: KAFKA_METRICS_OPTIONS, useValue: options }],
    };
  }
}
