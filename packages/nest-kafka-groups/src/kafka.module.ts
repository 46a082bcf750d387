import {
  type DynamicModule,
  type FactoryProvider,
  Global,
  type InjectionToken,
  Module,
  type Provider,
  type Type,
} from '@nestjs/common';
import { DiscoveryModule, ModulesContainer } from '@nestjs/core';
import { createKafkaClient } from './client/kafka-client.factory.js';
import { KafkaGroups } from './control/kafka-groups.service.js';
import type { Kafka } from './client/kafkajs.js';
import { KAFKA_CLIENT, KAFKA_FEATURE_OPTIONS, KAFKA_MODULE_OPTIONS } from './kafka.constants.js';
import { KafkaConfigurationError } from './errors/kafka-configuration.error.js';
import { KafkaHandlerDefinitionError } from './errors/kafka-handler-definition.error.js';
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
import { importedInstances, moduleNameOf } from './server/nest-internals.js';
import { KafkaShutdown } from './shutdown/kafka-shutdown.js';

const KAFKA_ROOT_CHECK = Symbol('KAFKA_ROOT_CHECK');

/**
 * Refuses a second `forRoot` (Nest keeps each call's module, even with equal settings): both are global, so one's
 * settings (brokers, clientId, defaults) would be silently unused and its server would run nothing.
 */
const rootCheck: FactoryProvider = {
  provide: KAFKA_ROOT_CHECK,
  inject: [ModulesContainer],
  useFactory: (modules: ModulesContainer) => {
    const roots = [...modules.values()].filter((module) => module.metatype === KafkaModule);
    if (roots.length < 2) return false;
    // Global modules are bound to every module's imports: the declared imports say who asked for forRoot.
    const importers = [...modules.values()]
      .filter((module) =>
        ((Reflect.getMetadata('imports', module.metatype) ?? []) as unknown[]).some(
          (imported) => (imported as DynamicModule | undefined)?.module === KafkaModule,
        ),
      )
      .map(moduleNameOf);
    throw new KafkaConfigurationError(
      'forRoot',
      `imported ${roots.length} times` +
        (importers.length > 0 ? ` (by ${importers.join(', ')})` : '') +
        '; import KafkaModule.forRoot once, in the root module (feature modules take forFeature)',
    );
  },
};

const rootProviders: Provider[] = [
  rootCheck,
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
const rootExports = [
  KAFKA_MODULE_OPTIONS,
  KAFKA_CLIENT,
  KafkaShutdown,
  KafkaGroupsServer,
  KafkaProducer,
  KafkaGroups,
];

const KAFKA_FEATURE_LOAD_CHECK = Symbol('KAFKA_FEATURE_LOAD_CHECK');

/**
 * Refuses a feature module instantiated after the server looked for handlers (a module given to LazyModuleLoader
 * once the groups started): its handlers would be silently never served.
 */
const featureLoadCheck: FactoryProvider = {
  provide: KAFKA_FEATURE_LOAD_CHECK,
  inject: [KAFKA_FEATURE_OPTIONS, ModulesContainer, { token: KafkaGroupsServer, optional: true }],
  useFactory: (options: KafkaFeatureOptions, modules: ModulesContainer, server?: KafkaGroupsServer) => {
    if (server?.handlersExplored !== true) return false;
    const importers = [...modules.values()]
      .filter((module) => importedInstances(module, KAFKA_FEATURE_OPTIONS).includes(options))
      .map(moduleNameOf);
    throw new KafkaHandlerDefinitionError(
      `Module ${importers.join(', ')} imports KafkaModule.forFeature (group "${options.groupId}") but was loaded ` +
        'after the Kafka groups started (LazyModuleLoader): its @KafkaHandler methods would never be served; ' +
        'import it in a module loaded at start-up',
    );
  },
};

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
        ...asyncOptionsProviders(
          'forRootAsync',
          KAFKA_MODULE_OPTIONS,
          options,
          'createKafkaOptions',
          validateModuleOptions,
        ),
        ...rootProviders,
      ],
      exports: rootExports,
    };
  }

  static forFeature(options: KafkaFeatureOptions): DynamicModule {
    return {
      module: KafkaFeatureModule,
      providers: [
        { provide: KAFKA_FEATURE_OPTIONS, useValue: validateFeatureOptions(options) },
        featureLoadCheck,
      ],
    };
  }

  static forFeatureAsync(options: KafkaFeatureAsyncOptions): DynamicModule {
    return {
      module: KafkaFeatureModule,
      imports: options.imports ?? [],
      providers: [
        ...asyncOptionsProviders(
          'forFeatureAsync',
          KAFKA_FEATURE_OPTIONS,
          options,
          'createKafkaFeatureOptions',
          validateFeatureOptions,
        ),
        featureLoadCheck,
      ],
    };
  }
}

/**
 * The provider of validated options under `token` from `useFactory`, `useClass` or `useExisting` (exactly one);
 * `useClass` also provides that class, in the module being built.
 */
function asyncOptionsProviders<T, M extends string>(
  method: string,
  token: symbol,
  options: {
    useFactory?: (...args: any[]) => T | Promise<T>;
    inject?: FactoryProvider['inject'];
    useClass?: Type<Record<M, () => T | Promise<T>>>;
    useExisting?: InjectionToken<Record<M, () => T | Promise<T>>>;
  },
  factoryMethod: M,
  validate: (options: T) => T,
): Provider[] {
  const given = (['useFactory', 'useClass', 'useExisting'] as const).filter(
    (key) => options[key] !== undefined,
  );
  if (given.length !== 1) {
    throw new KafkaConfigurationError(
      `KafkaModule.${method}`,
      `give exactly one of useFactory, useClass or useExisting (got ${given.length > 0 ? given.join(', ') : 'none'})`,
    );
  }
  const { useFactory, useClass, useExisting } = options;
  if (useFactory) {
    return [
      {
        provide: token,
        inject: options.inject ?? [],
        useFactory: async (...args: unknown[]) => validate(await useFactory(...args)),
      },
    ];
  }
  return [
    ...(useClass ? [useClass] : []),
    {
      provide: token,
      inject: [(useClass ?? useExisting)!],
      useFactory: async (factory: Record<M, () => T | Promise<T>>) =>
        validate(await factory[factoryMethod]()),
    },
  ];
}
