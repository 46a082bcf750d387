/** `nest-kafka-groups/health`: the @nestjs/terminus health indicator (an optional peer, loaded only here). */
export { KafkaHealthModule } from './kafka-health.module.js';
export {
  KafkaHealthIndicator,
  KAFKA_HEALTH_TIMEOUT_MS,
  type KafkaGroupHealth,
} from './kafka.health-indicator.js';
