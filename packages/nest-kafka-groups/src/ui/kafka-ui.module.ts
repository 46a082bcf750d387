import { type DynamicModule, Module } from '@nestjs/common';
import { KafkaStatusModule } from '../status/kafka-status.module.js';
import { KafkaUiController } from './kafka-ui.controller.js';
import { KAFKA_UI_OPTIONS, type KafkaUiOptions, resolveUiOptions } from './kafka-ui.options.js';
import { KafkaUiService } from './kafka-ui.service.js';

/**
 * The live page of the consumer groups at GET /kafka/ui (server-sent events at /kafka/ui/events). Import
 * `KafkaUiModule.forRoot()` once in an application that has `KafkaModule.forRoot`; nothing of it loads otherwise.
 */
@Module({})
export class KafkaUiModule {
  static forRoot(options: KafkaUiOptions = {}): DynamicModule {
    return {
      module: KafkaUiModule,
      imports: [KafkaStatusModule],
      controllers: [KafkaUiController],
      providers: [{ provide: KAFKA_UI_OPTIONS, useValue: resolveUiOptions(options) }, KafkaUiService],
      exports: [KafkaUiService],
    };
  }
}
