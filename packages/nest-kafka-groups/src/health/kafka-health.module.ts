import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { KafkaStatusModule } from '../status/kafka-status.module.js';
import { KafkaHealthIndicator } from './kafka.health-indicator.js';

/** Provides `KafkaHealthIndicator` for a @nestjs/terminus health controller. Needs `KafkaModule.forRoot`. */
@Module({
  imports: [TerminusModule, KafkaStatusModule],
  providers: [KafkaHealthIndicator],
  exports: [KafkaHealthIndicator],
})
export class KafkaHealthModule {}
