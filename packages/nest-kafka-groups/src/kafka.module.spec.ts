import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Inject, Injectable, Module, type ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { KafkaConfigurationError } from './errors/kafka-configuration.error.js';
import { KAFKA_FEATURE_OPTIONS, KAFKA_MODULE_OPTIONS } from './kafka.constants.js';
import { KafkaModule } from './kafka.module.js';
import type {
  KafkaFeatureOptions,
  KafkaFeatureOptionsFactory,
  KafkaModuleOptions,
  KafkaOptionsFactory,
} from './kafka.options.js';

/** Stands in for a configuration module: the options' values come from a provider of another module. */
const SETTINGS = 'SETTINGS';
const settings = { brokers: ['127.0.0.1:9092'], clientId: 'from-settings', groupId: 'from-settings' };

@Module({ providers: [{ provide: SETTINGS, useValue: settings }], exports: [SETTINGS] })
class SettingsModule {}

@Injectable()
class RootOptions implements KafkaOptionsFactory {
  constructor(@Inject(SETTINGS) private readonly s: typeof settings) {}
  createKafkaOptions(): KafkaModuleOptions {
    return { brokers: this.s.brokers, clientId: this.s.clientId };
  }
}

@Injectable()
class FeatureOptions implements KafkaFeatureOptionsFactory {
  constructor(@Inject(SETTINGS) private readonly s: typeof settings) {}
  async createKafkaFeatureOptions(): Promise<KafkaFeatureOptions> {
    return { groupId: this.s.groupId, concurrency: 2 };
  }
}

/** A module of the application's that provides the factories, for `useExisting`. */
@Module({
  imports: [SettingsModule],
  providers: [RootOptions, FeatureOptions],
  exports: [RootOptions, FeatureOptions],
})
class OptionsModule {}

/** Compiles the modules (nothing connects before init) and returns what `token` resolves to. */
async function resolved(imports: ModuleMetadata['imports'], token: symbol): Promise<unknown> {
  const app = await Test.createTestingModule({ imports }).compile();
  try {
    return app.get(token, { strict: false });
  } finally {
    await app.close();
  }
}

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

const rejectionOf = (run: Promise<unknown>) =>
  run.then(
    () => undefined,
    (error: unknown) => error,
  );

describe('KafkaModule.forRoot / forRootAsync', () => {
  test('forRoot validates at once', () => {
    const error = thrownBy(() => KafkaModule.forRoot({ brokers: [], clientId: 'x' }));
    expect(error).toBeInstanceOf(KafkaConfigurationError);
    expect((error as KafkaConfigurationError).setting).toBe('forRoot.brokers');
  });

  test('useFactory with inject from imports', async () => {
    const module = KafkaModule.forRootAsync({
      imports: [SettingsModule],
      inject: [SETTINGS],
      useFactory: (s: typeof settings) => ({ brokers: s.brokers, clientId: s.clientId }),
    });
    expect(await resolved([module], KAFKA_MODULE_OPTIONS)).toEqual({
      brokers: ['127.0.0.1:9092'],
      clientId: 'from-settings',
    });
  });

  test('useClass: the module builds the factory, with its dependencies from imports', async () => {
    const module = KafkaModule.forRootAsync({ imports: [SettingsModule], useClass: RootOptions });
    expect(await resolved([module], KAFKA_MODULE_OPTIONS)).toEqual({
      brokers: ['127.0.0.1:9092'],
      clientId: 'from-settings',
    });
  });

  test('useExisting: the factory provider of an imported module', async () => {
    const module = KafkaModule.forRootAsync({ imports: [OptionsModule], useExisting: RootOptions });
    expect(await resolved([module], KAFKA_MODULE_OPTIONS)).toEqual({
      brokers: ['127.0.0.1:9092'],
      clientId: 'from-settings',
    });
  });

  test.each([
    ['useFactory', { useFactory: () => ({ brokers: ['no-port'], clientId: 'x' }) }],
    [
      'useClass',
      {
        useClass: class implements KafkaOptionsFactory {
          createKafkaOptions = () => ({ brokers: ['no-port'], clientId: 'x' });
        },
      },
    ],
  ])('options from %s are validated', async (_, async) => {
    const error = await rejectionOf(resolved([KafkaModule.forRootAsync(async)], KAFKA_MODULE_OPTIONS));
    expect(error).toBeInstanceOf(KafkaConfigurationError);
    expect((error as Error).message).toBe(
      'Invalid Kafka setting "forRoot.brokers": "no-port" is not a "host:port" address',
    );
  });

  test.each([
    [{}, 'none'],
    [{ useFactory: () => settings, useClass: RootOptions }, 'useFactory, useClass'],
    [{ useClass: RootOptions, useExisting: RootOptions }, 'useClass, useExisting'],
  ])('exactly one source of options (%#)', (async, got) => {
    const error = thrownBy(() => KafkaModule.forRootAsync(async));
    expect(error).toBeInstanceOf(KafkaConfigurationError);
    expect((error as Error).message).toBe(
      `Invalid Kafka setting "KafkaModule.forRootAsync": give exactly one of useFactory, useClass or useExisting (got ${got})`,
    );
  });
});

describe('KafkaModule.forFeature / forFeatureAsync', () => {
  test('forFeature validates at once', () => {
    const error = thrownBy(() => KafkaModule.forFeature({ groupId: ' ' }));
    expect((error as KafkaConfigurationError).setting).toBe('forFeature.groupId');
  });

  test('useFactory with inject', async () => {
    const module = KafkaModule.forFeatureAsync({
      imports: [SettingsModule],
      inject: [SETTINGS],
      useFactory: (s: typeof settings) => ({ groupId: s.groupId }),
    });
    expect(await resolved([module], KAFKA_FEATURE_OPTIONS)).toEqual({ groupId: 'from-settings' });
  });

  test('useClass', async () => {
    const module = KafkaModule.forFeatureAsync({ imports: [SettingsModule], useClass: FeatureOptions });
    expect(await resolved([module], KAFKA_FEATURE_OPTIONS)).toEqual({
      groupId: 'from-settings',
      concurrency: 2,
    });
  });

  test('useExisting', async () => {
    const module = KafkaModule.forFeatureAsync({ imports: [OptionsModule], useExisting: FeatureOptions });
    expect(await resolved([module], KAFKA_FEATURE_OPTIONS)).toEqual({
      groupId: 'from-settings',
      concurrency: 2,
    });
  });

  test('options from a factory class are validated', async () => {
    class Blank implements KafkaFeatureOptionsFactory {
      createKafkaFeatureOptions = () => ({ groupId: '' });
    }
    const error = await rejectionOf(
      resolved([KafkaModule.forFeatureAsync({ useClass: Blank })], KAFKA_FEATURE_OPTIONS),
    );
    expect((error as KafkaConfigurationError).setting).toBe('forFeature.groupId');
  });

  test('exactly one source of options', () => {
    const error = thrownBy(() => KafkaModule.forFeatureAsync({}));
    expect((error as KafkaConfigurationError).setting).toBe('KafkaModule.forFeatureAsync');
  });
});
