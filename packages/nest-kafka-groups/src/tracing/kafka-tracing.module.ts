import { type DynamicModule, Module } from '@nestjs/common';
import { KAFKA_TRACING_OPTIONS, KafkaTracing, type KafkaTracingOptions } from './kafka-tracing.js';

/**
 * OpenTelemetry tracing of the consumer groups and `KafkaProducer`. Import it once, next to `KafkaModule.forRoot`,
 * with your OpenTelemetry SDK started before the Nest application is created.
 */
@Module({
  providers: [KafkaTracing],
  exports: [KafkaTracing],
})
export class KafkaTracingModule {
  static forRoot(options: KafkaTracingOptions = {}): DynamicModule {
    return {
      module: KafkaTracingModule,
      providers: [{ provide: KAFKA_TRACING_OPTIONS, useValue: options }],
    };
  }
}
