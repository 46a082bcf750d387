import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { createKafkaClient } from './client/kafka-client.factory.js';
import { KafkaGroups } from './control/kafka-groups.service.js';
import type { Kafka } from './client/kafkajs.js';
import { KAFKA_CLIENT, KAFKA_FEATURE_OPTIONS, KAFKA_MODULE_OPTIONS } from './kafka.constants.js';
import {
  type KafkaFeatureAsyncOptions,
  type KafkaFeatureOptions,
  type KafkaModuleAsyncOptions,
  type KafkaModuleOptions,
  validateFeatureOptions,
  validateModuleOptions,
} from './kafka.options.js';
import { KafkaProducer } from './producer/kafka.producer.js';
import { KafkaGroupsServer } from './server/kafka-groups.server.js';
import { KafkaHandlerExplorer } from './server/kafka-handler.explorer.js';
import { KafkaShutdown } from './shutdown/kafka-shutdown.js';

const rootProviders: Provider[] = [
  {
    provide: KAFKA_CLIENT,
    inject: [KAFKA_MODULE_OPTIONS],
    useFactory: (o: KafkaModuleOptions): Kafka => createKafkaClient(o),
  },
  KafkaShutdown,
  KafkaHandlerExplorer,
  KafkaGroupsServer,
  KafkaProducer,
  KafkaGroups,
];
const rootExports = [KAFKA_MODULE_OPTIONS, KAFKA_CLIENT, KafkaShutdown, KafkaGroupsServer, KafkaProducer, KafkaGroups];

/** Holds one module's consumer group settings; the server finds it among the module's imports. */
@Module({})
export class KafkaFeatureModule {}

/**
 * `forRoot` once (connection and defaults for every group), `forFeature` in each feature module: that module's
 * `@KafkaHandler` methods form the consumer group it names.
 */
@Global()
@Module({})
export class KafkaModule {
  static forRoot(options: KafkaModuleOptions): DynamicModule {
    return {
      module: KafkaModule,
      imports: [DiscoveryModule],
      providers: [
        { provide: KAFKA_MODULE_OPTIONS, useValue: validateModuleOptions(options) },
        ...rootProviders,
      ],
      exports: rootExports,
    };
  }

  static forRootAsync(options: KafkaModuleAsyncOptions): DynamicModule {
    return {
      module: KafkaModule,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        {
          provide: KAFKA_MODULE_OPTIONS,
          inject: options.inject ?? [],
          useFactory: async (...args: unknown[]) => validateModuleOptions(await options.useFactory(...args)),
        },
        ...rootProviders,
      ],
      exports: rootExports,
    };
  }

  static forFeature(options: KafkaFeatureOptions): DynamicModule {
    return {
      module: KafkaFeatureModule,
      providers: [{ provide: KAFKA_FEATURE_OPTIONS, useValue: validateFeatureOptions(options) }],
    };
  }

  static forFeatureAsync(options: KafkaFeatureAsyncOptions): DynamicModule {
    return {
      module: KafkaFeatureModule,
      imports: options.imports ?? [],
      providers: [
        {
          provide: KAFKA_FEATURE_OPTIONS,
          inject: options.inject ?? [],
          useFactory: async (...args: unknown[]) => validateFeatureOptions(await options.useFactory(...args)),
        },
      ],
    };
  }
}
