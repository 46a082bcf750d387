/** `nest-kafka-groups/metrics`: Prometheus metrics with prom-client (an optional peer, loaded only here). */
export { KafkaMetricsModule } from './kafka-metrics.module.js';
export {
  KafkaMetricsService,
  KAFKA_METRICS_OPTIONS,
  DEFAULT_DURATION_BUCKETS,
  type KafkaMetricsOptions,
} from './kafka-metrics.service.js';
