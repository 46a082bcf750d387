import { type MiddlewareConsumer, Module, type NestModule, RequestMethod } from '@nestjs/common';
import { KafkaTracingModule } from 'nest-kafka-groups/tracing';
import { HttpTracingMiddleware } from './http-tracing.middleware.js';

/**
 * OpenTelemetry tracing of the service: HTTP requests, Kafka sends and handled messages. Spans are recorded only
 * when an OpenTelemetry SDK was started before the application (see the README); otherwise this costs nothing.
 */
@Module({
  imports: [KafkaTracingModule.forRoot()],
  providers: [HttpTracingMiddleware],
})
export class TracingModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpTracingMiddleware).forRoutes({ path: '*path', method: RequestMethod.ALL });
  }
}
