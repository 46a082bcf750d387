/**
 * `nest-kafka-groups/tracing`: OpenTelemetry spans for producing and consuming, with `@opentelemetry/api` (an
 * optional peer, loaded only here).
 */
export { KafkaTracingModule } from './kafka-tracing.module.js';
export {
  KafkaTracing,
  KAFKA_TRACING_OPTIONS,
  KAFKA_TRACER_NAME,
  KAFKA_SPAN_ATTRIBUTES,
  type KafkaTracingOptions,
} from './kafka-tracing.js';
export type { KafkaTracingHooks } from '../server/tracing-hooks.js';
