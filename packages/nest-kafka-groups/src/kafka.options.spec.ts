import { describe, expect, test } from '@jest/globals';
import zlib from 'node:zlib';
import { KafkaConfigurationError } from './errors/kafka-configuration.error.js';
import { KafkaGroupsError } from './errors/kafka-groups.error.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_CONSUMER_TUNING,
  DEFAULT_DEAD_LETTER,
  DEFAULT_LIMITS,
  DEFAULT_MAX_PROCESSING_TIME_MS,
  DEFAULT_COMMIT_INTERVAL_MS,
  DEFAULT_PARTITIONS_CONSUMED_CONCURRENTLY,
  DEFAULT_RESTART_BACKOFF,
  DEFAULT_RETRY,
  deadLetterTopicFor,
  type KafkaFeatureOptions,
  type KafkaModuleOptions,
  resolveGroupSettings,
  resolveRestartBackoff,
  resolveHandlerSettings,
  resolveTopic,
  validateFeatureOptions,
  validateHandlerOptions,
  validateModuleOptions,
} from './kafka.options.js';

/** Runs `fn`, expects a KafkaConfigurationError, and returns it for further assertions. */
function configurationError(fn: () => unknown): KafkaConfigurationError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(KafkaConfigurationError);
  return thrown as KafkaConfigurationError;
}

/** Expects a KafkaConfigurationError whose `setting` and message both name `setting`. */
function expectSettingError(fn: () => unknown, setting: string): KafkaConfigurationError {
  const error = configurationError(fn);
  expect(error.setting).toBe(setting);
  expect(error.message).toContain(`"${setting}"`);
  return error;
}

const root = (extra: Partial<KafkaModuleOptions> = {}): KafkaModuleOptions => ({
  brokers: ['localhost:9092'],
  ...extra,
});

describe('validateModuleOptions', () => {
  test('accepts valid options and returns them unchanged', () => {
    const options = root({
      brokers: ['kafka-1:9092', '10.0.0.2:19092'],
      concurrency: 2,
      partitionsConsumedConcurrently: 1,
      shutdownTimeoutMs: 5000,
      retry: { attempts: 1, initialDelayMs: 0, multiplier: 1, maxDelayMs: 0 },
      deadLetter: { enabled: false, topic: (t) => `${t}.dlq`, timeoutMs: 1, retryDelayMs: 0 },
      consumer: { sessionTimeout: 30000, minBytes: 0 },
    });
    expect(validateModuleOptions(options)).toBe(options);
  });

  test.each(['none', 'gzip', 'snappy', 'lz4'] as const)('accepts compression %s', (compression) => {
    expect(validateModuleOptions(root({ compression }))).toEqual(root({ compression }));
  });

  test('rejects an unknown compression and a maxDecompressedBatchBytes below 1, naming the setting', () => {
    const unknown = expectSettingError(
      () => validateModuleOptions(root({ compression: 'brotli' as unknown as 'gzip' })),
      'forRoot.compression',
    );
    expect(unknown.message).toContain('expected one of none, gzip, snappy, lz4, zstd, got "brotli"');
    expectSettingError(
      () => validateModuleOptions(root({ maxDecompressedBatchBytes: 0 })),
      'forRoot.maxDecompressedBatchBytes',
    );
  });

  test('compression zstd: accepted where Node has zstd in zlib (22.15+), a start-up error naming the version before', () => {
    const validate = () => validateModuleOptions(root({ compression: 'zstd' }));
    if (typeof (zlib as { zstdCompress?: unknown }).zstdCompress === 'function') {
      expect(validate()).toEqual(root({ compression: 'zstd' }));
    } else {
      expect(expectSettingError(validate, 'forRoot.compression').message).toContain(
        `zstd needs Node.js 22.15 or newer to produce (this is ${process.version})`,
      );
    }
  });

  test('the error is part of the library error family and named after its class', () => {
    const error = configurationError(() => validateModuleOptions(root({ brokers: [] })));
    expect(error).toBeInstanceOf(KafkaGroupsError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('KafkaConfigurationError');
  });

  test.each([
    ['missing', undefined],
    ['empty', []],
    ['not an array', 'localhost:9092'],
  ])('rejects %s brokers, naming forRoot.brokers', (_label, brokers) => {
    const error = expectSettingError(
      () => validateModuleOptions({ brokers } as unknown as KafkaModuleOptions),
      'forRoot.brokers',
    );
    expect(error.message).toContain('expected at least one "host:port" broker address');
  });

  test.each([
    ['no mechanism', { username: 'u', password: 'p' }, 'forRoot.sasl.mechanism', 'got undefined'],
    [
      'an unknown mechanism',
      { mechanism: 'gssapi', username: 'u', password: 'p' },
      'forRoot.sasl.mechanism',
      'got "gssapi"',
    ],
    [
      'PLAIN without a user',
      { mechanism: 'plain', password: 'secret-1' },
      'forRoot.sasl.username',
      'SASL PLAIN',
    ],
    [
      'SCRAM without a password',
      { mechanism: 'scram-sha-512', username: 'u' },
      'forRoot.sasl.password',
      'SASL SCRAM-SHA-512',
    ],
    [
      'OAUTHBEARER without a provider',
      { mechanism: 'oauthbearer' },
      'forRoot.sasl.oauthBearerProvider',
      'OAUTHBEARER',
    ],
  ])('rejects SASL with %s, naming the setting and never the secret', (_label, sasl, setting, text) => {
    const error = expectSettingError(
      () => validateModuleOptions({ brokers: ['127.0.0.1:9092'], sasl } as unknown as KafkaModuleOptions),
      setting,
    );
    expect(error.message).toContain(text);
    expect(error.message).not.toContain('secret-1');
  });

  test('accepts the built-in SASL mechanisms in any case, and a custom one with its provider', () => {
    for (const sasl of [
      { mechanism: 'PLAIN', username: 'u', password: '' },
      { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
      { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: 't' }) },
      { mechanism: 'aws', authorizationIdentity: 'a', accessKeyId: 'k', secretAccessKey: 's' },
      { mechanism: 'my-mech', authenticationProvider: () => ({ authenticate: async () => undefined }) },
    ]) {
      expect(() =>
        validateModuleOptions({ brokers: ['127.0.0.1:9092'], sasl } as unknown as KafkaModuleOptions),
      ).not.toThrow();
    }
  });

  test('rejects undefined options, naming forRoot.brokers', () => {
    expectSettingError(
      () => validateModuleOptions(undefined as unknown as KafkaModuleOptions),
      'forRoot.brokers',
    );
  });

  test.each([
    ['localhost'],
    ['localhost:'],
    [':9092'],
    ['local host:9092'],
    ['localhost:90a2'],
    ['a:1,b:2'],
    [''],
  ])('rejects broker %j and quotes it in the message', (broker) => {
    const error = expectSettingError(
      () => validateModuleOptions(root({ brokers: ['ok:9092', broker] })),
      'forRoot.brokers',
    );
    expect(error.message).toContain(`"${broker}" is not a "host:port" address`);
  });

  test('rejects a non-string broker, even one whose text is an address (a list nested in the list)', () => {
    for (const broker of [9092, ['localhost:9092']]) {
      expectSettingError(
        () => validateModuleOptions(root({ brokers: [broker as unknown as string] })),
        'forRoot.brokers',
      );
    }
  });

  test.each([[0], [-1], [1.5], [Number.NaN], ['2']])('rejects concurrency %p', (concurrency) => {
    const error = expectSettingError(
      () => validateModuleOptions(root({ concurrency: concurrency as number })),
      'forRoot.concurrency',
    );
    expect(error.message).toContain('expected an integer >= 1');
  });

  test('rejects partitionsConsumedConcurrently 0', () => {
    expectSettingError(
      () => validateModuleOptions(root({ partitionsConsumedConcurrently: 0 })),
      'forRoot.partitionsConsumedConcurrently',
    );
  });

  test('rejects maxProcessingTimeMs 0', () => {
    expectSettingError(
      () => validateModuleOptions(root({ maxProcessingTimeMs: 0 })),
      'forRoot.maxProcessingTimeMs',
    );
  });

  test('rejects an autoStart that is not a boolean, naming the group', () => {
    const autoStart = expectSettingError(
      () => validateFeatureOptions({ groupId: 'g', autoStart: 'no' as unknown as boolean }),
      'forFeature(g).autoStart',
    ).message;
    expect(autoStart).toContain('expected true or false, got "no"');
    expect(() => validateFeatureOptions({ groupId: 'g', autoStart: false })).not.toThrow();
  });

  test('rejects a negative or fractional commitIntervalMs, accepts 0 (commit after every batch)', () => {
    expectSettingError(
      () => validateModuleOptions(root({ commitIntervalMs: -1 })),
      'forRoot.commitIntervalMs',
    );
    expectSettingError(
      () => validateModuleOptions(root({ commitIntervalMs: 0.5 })),
      'forRoot.commitIntervalMs',
    );
    expect(() => validateModuleOptions(root({ commitIntervalMs: 0 }))).not.toThrow();
  });

  test('rejects shutdownTimeoutMs 0', () => {
    expectSettingError(
      () => validateModuleOptions(root({ shutdownTimeoutMs: 0 })),
      'forRoot.shutdownTimeoutMs',
    );
  });

  test('rejects retry with attempts 0 (the first delivery counts as an attempt)', () => {
    const error = expectSettingError(
      () => validateModuleOptions(root({ retry: { attempts: 0 } })),
      'forRoot.retry.attempts',
    );
    expect(error.message).toContain('got 0');
  });

  test('rejects a retry multiplier below 1', () => {
    const error = expectSettingError(
      () => validateModuleOptions(root({ retry: { multiplier: 0.5 } })),
      'forRoot.retry.multiplier',
    );
    expect(error.message).toContain('expected a number >= 1, got 0.5');
  });

  test.each([
    ['initialDelayMs', -1],
    ['maxDelayMs', -5],
    ['initialDelayMs', Number.POSITIVE_INFINITY],
  ])('rejects retry.%s = %p', (key, value) => {
    expectSettingError(
      () => validateModuleOptions(root({ retry: { [key]: value } })),
      `forRoot.retry.${key}`,
    );
  });

  test.each([
    ['topics.partitions', { partitions: 0 }],
    ['topics.replicationFactor', { replicationFactor: 1.5 }],
    ['topics.create', { create: 'yes' }],
    ['topics.config.retention.ms', { config: { 'retention.ms': 1000 } }],
  ])('rejects %s', (setting, topics) => {
    expectSettingError(
      () => validateModuleOptions(root({ topics: topics as KafkaModuleOptions['topics'] })),
      `forRoot.${setting}`,
    );
  });

  test.each(['initialDelayMs', 'maxDelayMs'])('rejects restartBackoff.%s 0', (key) => {
    expectSettingError(
      () => validateModuleOptions(root({ restartBackoff: { [key]: 0 } })),
      `forRoot.restartBackoff.${key}`,
    );
  });

  test('topics: create true or false and string config values are accepted; a refusal quotes the value given', () => {
    for (const create of [true, false]) {
      expect(() =>
        validateModuleOptions(root({ topics: { create, config: { 'retention.ms': '1000' } } })),
      ).not.toThrow();
    }
    const create = expectSettingError(
      () => validateModuleOptions(root({ topics: { create: 'yes' as unknown as boolean } })),
      'forRoot.topics.create',
    );
    expect(create.message).toContain('expected true or false, got "yes"');
    const config = expectSettingError(
      () =>
        validateModuleOptions(root({ topics: { config: { 'retention.ms': 1000 as unknown as string } } })),
      'forRoot.topics.config.retention.ms',
    );
    expect(config.message).toContain('expected a string, got 1000');
  });

  test('accepts a deadLetter.topic name', () => {
    expect(() => validateModuleOptions(root({ deadLetter: { topic: 'all-dead-letters' } }))).not.toThrow();
  });

  test.each([[''], ['   '], [42], [null]])('rejects deadLetter.topic %p', (topic) => {
    const error = expectSettingError(
      () => validateModuleOptions(root({ deadLetter: { topic: topic as string } })),
      'forRoot.deadLetter.topic',
    );
    expect(error.message).toContain('expected a non-empty topic name or a function');
  });

  test('rejects deadLetter.timeoutMs 0 and a negative retryDelayMs', () => {
    expectSettingError(
      () => validateModuleOptions(root({ deadLetter: { timeoutMs: 0 } })),
      'forRoot.deadLetter.timeoutMs',
    );
    expectSettingError(
      () => validateModuleOptions(root({ deadLetter: { retryDelayMs: -1 } })),
      'forRoot.deadLetter.retryDelayMs',
    );
  });

  test('rejects negative or fractional consumer tuning, naming the key', () => {
    expectSettingError(
      () => validateModuleOptions(root({ consumer: { sessionTimeout: -1 } })),
      'forRoot.consumer.sessionTimeout',
    );
    expectSettingError(
      () => validateModuleOptions(root({ consumer: { maxBytes: 1.5 } })),
      'forRoot.consumer.maxBytes',
    );
  });
});

describe('validateFeatureOptions', () => {
  test('accepts a group id and returns the options', () => {
    const options: KafkaFeatureOptions = { groupId: 'airnav', concurrency: 3 };
    expect(validateFeatureOptions(options)).toBe(options);
  });

  test.each([[''], ['   '], ['\t\n'], [undefined], [42]])('rejects groupId %p', (groupId) => {
    const error = expectSettingError(
      () => validateFeatureOptions({ groupId } as unknown as KafkaFeatureOptions),
      'forFeature.groupId',
    );
    expect(error.message).toContain('non-empty consumer group id');
  });

  test('rejects undefined options', () => {
    expectSettingError(
      () => validateFeatureOptions(undefined as unknown as KafkaFeatureOptions),
      'forFeature.groupId',
    );
  });

  test('names the group in the scope of its other settings', () => {
    expectSettingError(
      () => validateFeatureOptions({ groupId: 'airnav', concurrency: 0 }),
      'forFeature(airnav).concurrency',
    );
    expectSettingError(
      () => validateFeatureOptions({ groupId: 'airnav', retry: { attempts: 0 } }),
      'forFeature(airnav).retry.attempts',
    );
    expectSettingError(
      () => validateFeatureOptions({ groupId: 'airnav', deadLetter: { topic: '' } }),
      'forFeature(airnav).deadLetter.topic',
    );
  });
});

describe('validateHandlerOptions', () => {
  test('batch options: maxBatchSize a positive integer, items a class, both only with batch: true', () => {
    class ItemDto {}
    expect(() =>
      validateHandlerOptions('@KafkaHandler(A.b)', { batch: true, maxBatchSize: 1, items: ItemDto }),
    ).not.toThrow();
    expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { batch: true, maxBatchSize: 0 }),
      '@KafkaHandler(A.b).maxBatchSize',
    );
    expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { batch: true, maxBatchSize: 2.5 }),
      '@KafkaHandler(A.b).maxBatchSize',
    );
    const batch = expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { batch: 'yes' as unknown as boolean }),
      '@KafkaHandler(A.b).batch',
    );
    expect(batch.message).toContain('expected true or false, got "yes"');
    const items = expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { batch: true, items: {} as never }),
      '@KafkaHandler(A.b).items',
    );
    expect(items.message).toContain('expected a class (the type of one batch element)');
    const single = expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { maxBatchSize: 10 }),
      '@KafkaHandler(A.b).maxBatchSize',
    );
    expect(single.message).toContain('add batch: true');
    expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { batch: false, items: ItemDto }),
      '@KafkaHandler(A.b).items',
    );
  });

  test('accepts valid options', () => {
    expect(() =>
      validateHandlerOptions('@KafkaHandler(A.b)', { retry: { attempts: 5 }, raw: true }),
    ).not.toThrow();
  });

  test('names the handler scope', () => {
    expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { retry: { multiplier: 0 } }),
      '@KafkaHandler(A.b).retry.multiplier',
    );
    expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { deadLetter: { topic: '' } }),
      '@KafkaHandler(A.b).deadLetter.topic',
    );
  });

  test('limits must be positive integers, at every level, and known by name', () => {
    expect(() => validateHandlerOptions('@KafkaHandler(A.b)', { limits: { maxJsonDepth: 1 } })).not.toThrow();
    expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { limits: { maxHeaders: 0 } }),
      '@KafkaHandler(A.b).limits.maxHeaders',
    );
    expectSettingError(
      () => validateFeatureOptions({ groupId: 'airnav', limits: { maxValueBytes: 1.5 } }),
      'forFeature(airnav).limits.maxValueBytes',
    );
    expectSettingError(
      () => validateModuleOptions(root({ limits: { maxJsonKeys: -1 } })),
      'forRoot.limits.maxJsonKeys',
    );
    const unknown = expectSettingError(
      () => validateModuleOptions(root({ limits: { maxDepth: 3 } as never })),
      'forRoot.limits.maxDepth',
    );
    expect(unknown.message).toContain(
      'unknown limit; known: maxHeaders, maxHeaderBytes, maxValueBytes, maxJsonDepth, maxJsonKeys',
    );
  });
});

describe('retry topic options', () => {
  test('accepted at every level', () => {
    const retry = {
      topics: true,
      delaysMs: [0, 1000],
      topicSuffix: '.retry',
      topicSuffixing: 'index' as const,
    };
    expect(() => validateHandlerOptions('@KafkaHandler(A.b)', { retry })).not.toThrow();
    expect(() => validateFeatureOptions({ groupId: 'g', retry })).not.toThrow();
    expect(() =>
      validateModuleOptions(
        root({ retry: { topics: true, topicName: (t) => `${t}.r`, topicSuffixing: 'delay' } }),
      ),
    ).not.toThrow();
  });

  test.each([
    [{ topics: 'yes' }, 'retry.topics', 'expected true or false, got "yes"'],
    [{ delaysMs: 1000 }, 'retry.delaysMs', 'expected an array of delays, got 1000'],
    [{ delaysMs: [1000, 1.5] }, 'retry.delaysMs[1]', 'expected an integer >= 0, got 1.5'],
    [{ delaysMs: [-1] }, 'retry.delaysMs[0]', 'expected an integer >= 0, got -1'],
    // A hole in the array is no delay.
    // eslint-disable-next-line no-sparse-arrays -- the hole is the case under test
    [{ delaysMs: [1000, , 2000] }, 'retry.delaysMs[1]', 'expected an integer >= 0, got null'],
    [{ topicSuffix: '' }, 'retry.topicSuffix', 'expected a non-empty string such as "-retry"'],
    [{ topicSuffix: 5 }, 'retry.topicSuffix', 'expected a non-empty string such as "-retry"'],
    [{ topicSuffixing: 'value' }, 'retry.topicSuffixing', 'expected "delay" or "index", got "value"'],
    [{ topicName: '-r' }, 'retry.topicName', 'expected a function (sourceTopic, delayMs, index) => name'],
  ])('%p is refused, naming %s: %s', (retry, setting, expected) => {
    const error = expectSettingError(
      () => validateHandlerOptions('@KafkaHandler(A.b)', { retry: retry as never }),
      `@KafkaHandler(A.b).${setting}`,
    );
    expect(error.message).toContain(expected);
  });

  test('the delays are settled once: given, or those of the backoff for attempts - 1 retries', () => {
    const given = resolveHandlerSettings(
      root({ retry: { topics: true } }),
      { groupId: 'g' },
      { retry: { delaysMs: [300] } },
    );
    expect(given.retry).toMatchObject({ topics: true, delaysMs: [300] });
    const derived = resolveHandlerSettings(
      root(),
      { groupId: 'g', retry: { topics: true, attempts: 4 } },
      {},
    );
    expect(derived.retry.delaysMs).toEqual([500, 1000, 2000]);
    expect(resolveHandlerSettings(root(), { groupId: 'g' }, {}).retry.delaysMs).toBeUndefined();
  });
});

describe('resolveRestartBackoff', () => {
  test('the defaults, overridden bound by bound', () => {
    expect(resolveRestartBackoff(root())).toEqual(DEFAULT_RESTART_BACKOFF);
    expect(resolveRestartBackoff(root({ restartBackoff: { maxDelayMs: 60_000 } }))).toEqual({
      initialDelayMs: DEFAULT_RESTART_BACKOFF.initialDelayMs,
      maxDelayMs: 60_000,
    });
  });
});

describe('resolveGroupSettings', () => {
  test('falls back to the library defaults', () => {
    expect(resolveGroupSettings(root(), { groupId: 'g' })).toEqual({
      groupId: 'g',
      concurrency: DEFAULT_CONCURRENCY,
      partitionsConsumedConcurrently: DEFAULT_PARTITIONS_CONSUMED_CONCURRENTLY,
      fromBeginning: false,
      consumer: DEFAULT_CONSUMER_TUNING,
      maxProcessingTimeMs: DEFAULT_MAX_PROCESSING_TIME_MS,
      commitIntervalMs: DEFAULT_COMMIT_INTERVAL_MS,
      autoStart: true,
    });
  });

  test('root overrides the defaults', () => {
    const settings = resolveGroupSettings(
      root({
        concurrency: 3,
        partitionsConsumedConcurrently: 2,
        fromBeginning: true,
        consumer: { sessionTimeout: 45000 },
        maxProcessingTimeMs: 60_000,
        commitIntervalMs: 5_000,
      }),
      { groupId: 'g' },
    );
    expect(settings).toEqual({
      groupId: 'g',
      concurrency: 3,
      partitionsConsumedConcurrently: 2,
      fromBeginning: true,
      consumer: { ...DEFAULT_CONSUMER_TUNING, sessionTimeout: 45000 },
      maxProcessingTimeMs: 60_000,
      commitIntervalMs: 5_000,
      autoStart: true,
    });
  });

  test('the feature overrides root, consumer tuning merged key by key', () => {
    const settings = resolveGroupSettings(
      root({
        concurrency: 3,
        partitionsConsumedConcurrently: 2,
        fromBeginning: true,
        consumer: { sessionTimeout: 45000, maxWaitTimeInMs: 100 },
        maxProcessingTimeMs: 60_000,
      }),
      {
        groupId: 'g',
        concurrency: 5,
        fromBeginning: false,
        consumer: { sessionTimeout: 10000 },
        maxProcessingTimeMs: 1_000,
        commitIntervalMs: 0,
        autoStart: false,
      },
    );
    expect(settings).toEqual({
      groupId: 'g',
      concurrency: 5,
      partitionsConsumedConcurrently: 2,
      fromBeginning: false,
      consumer: { sessionTimeout: 10000, maxWaitTimeInMs: 100 },
      maxProcessingTimeMs: 1_000,
      commitIntervalMs: 0,
      autoStart: false,
    });
  });

  test('the default fetch wait is overridable per group', () => {
    expect(
      resolveGroupSettings(root(), { groupId: 'g', consumer: { maxWaitTimeInMs: 50 } }).consumer,
    ).toEqual({
      ...DEFAULT_CONSUMER_TUNING,
      maxWaitTimeInMs: 50,
    });
  });
});

describe('resolveHandlerSettings', () => {
  test('falls back to the library defaults', () => {
    expect(resolveHandlerSettings(root(), { groupId: 'g' }, {})).toEqual({
      retry: DEFAULT_RETRY,
      deadLetter: DEFAULT_DEAD_LETTER,
      // jest runs with NODE_ENV=test: topics are created unless NODE_ENV is "production".
      topics: { create: true, config: {} },
      limits: DEFAULT_LIMITS,
      raw: false,
    });
  });

  test('topics: created except in production, partitions and config merged root < feature < handler', () => {
    const saved = process.env.NODE_ENV;
    try {
      process.env.NODE_ENV = 'production';
      expect(resolveHandlerSettings(root(), { groupId: 'g' }, {}).topics).toEqual({
        create: false,
        config: {},
      });
      const settings = resolveHandlerSettings(
        root({
          topics: {
            create: true,
            partitions: 3,
            config: { 'retention.ms': '1000', 'cleanup.policy': 'delete' },
          },
        }),
        { groupId: 'g', topics: { replicationFactor: 2, config: { 'retention.ms': '2000' } } },
        { topics: { partitions: 6 } },
      );
      expect(settings.topics).toEqual({
        create: true,
        partitions: 6,
        replicationFactor: 2,
        config: { 'retention.ms': '2000', 'cleanup.policy': 'delete' },
      });
    } finally {
      process.env.NODE_ENV = saved;
    }
  });

  test('limits: root < feature < handler, bound by bound', () => {
    const { limits } = resolveHandlerSettings(
      root({ limits: { maxHeaders: 10, maxJsonDepth: 20 } }),
      { groupId: 'g', limits: { maxJsonDepth: 30, maxJsonKeys: 40 } },
      { limits: { maxValueBytes: 50 } },
    );
    expect(limits).toEqual({
      maxHeaders: 10,
      maxHeaderBytes: DEFAULT_LIMITS.maxHeaderBytes,
      maxValueBytes: 50,
      maxJsonDepth: 30,
      maxJsonKeys: 40,
    });
  });

  test('precedence is root < feature < handler, field by field', () => {
    const settings = resolveHandlerSettings(
      root({
        retry: { attempts: 2, initialDelayMs: 100, multiplier: 3 },
        deadLetter: { enabled: false, timeoutMs: 1000, topic: 'root-dlt' },
      }),
      { groupId: 'g', retry: { attempts: 4, initialDelayMs: 200 }, deadLetter: { timeoutMs: 2000 } },
      { retry: { attempts: 6 }, deadLetter: { topic: 'handler-dlt' }, raw: true },
    );
    expect(settings).toEqual({
      retry: { attempts: 6, initialDelayMs: 200, multiplier: 3, maxDelayMs: DEFAULT_RETRY.maxDelayMs },
      deadLetter: {
        enabled: false,
        topic: 'handler-dlt',
        timeoutMs: 2000,
        retryDelayMs: DEFAULT_DEAD_LETTER.retryDelayMs,
      },
      topics: { create: true, config: {} },
      limits: DEFAULT_LIMITS,
      raw: true,
    });
  });

  test('does not mutate the shared defaults', () => {
    resolveHandlerSettings(
      root({ retry: { attempts: 9 } }),
      { groupId: 'g' },
      { deadLetter: { enabled: false } },
    );
    expect(DEFAULT_RETRY.attempts).toBe(3);
    expect(DEFAULT_DEAD_LETTER.enabled).toBe(true);
  });
});

describe('deadLetterTopicFor', () => {
  test('defaults to <topic>-dlt', () => {
    expect(deadLetterTopicFor('live-flight-airnav', DEFAULT_DEAD_LETTER)).toBe('live-flight-airnav-dlt');
  });

  test('uses a fixed topic name as given', () => {
    expect(deadLetterTopicFor('orders', { ...DEFAULT_DEAD_LETTER, topic: 'all-dead-letters' })).toBe(
      'all-dead-letters',
    );
  });

  test('calls a function with the source topic', () => {
    const calls: string[] = [];
    const topic = (source: string) => {
      calls.push(source);
      return `dlq.${source}`;
    };
    expect(deadLetterTopicFor('orders', { ...DEFAULT_DEAD_LETTER, topic })).toBe('dlq.orders');
    expect(calls).toEqual(['orders']);
  });
});

describe('resolveTopic', () => {
  const feature: KafkaFeatureOptions = {
    groupId: 'airnav',
    topicVariables: { AIRNAV_TOPIC: 'live-flight-airnav' },
  };

  test('returns a literal topic unchanged', () => {
    expect(resolveTopic('plain-topic', feature, 'A.b')).toBe('plain-topic');
    expect(resolveTopic('plain-topic', undefined, 'A.b')).toBe('plain-topic');
  });

  test('replaces a ${NAME} placeholder from topicVariables', () => {
    expect(resolveTopic('${AIRNAV_TOPIC}', feature, 'A.b')).toBe('live-flight-airnav');
  });

  test('a missing variable names the setting, the handler and the placeholder', () => {
    const error = expectSettingError(
      () => resolveTopic('${FLIGHT24_TOPIC}', feature, 'Flight24Controller.handle'),
      'forFeature(airnav).topicVariables.FLIGHT24_TOPIC',
    );
    expect(error.message).toContain('Flight24Controller.handle subscribes to "${FLIGHT24_TOPIC}"');
    expect(error.message).toContain('no value is given for FLIGHT24_TOPIC');
  });

  test('a blank variable counts as missing', () => {
    expectSettingError(
      () => resolveTopic('${T}', { groupId: 'g', topicVariables: { T: '  ' } }, 'A.b'),
      'forFeature(g).topicVariables.T',
    );
  });

  test('without forFeature the setting shows an unknown group', () => {
    expectSettingError(() => resolveTopic('${T}', undefined, 'A.b'), 'forFeature(?).topicVariables.T');
  });

  test('a group without topicVariables: the same error, naming the group', () => {
    expectSettingError(() => resolveTopic('${T}', { groupId: 'g' }, 'A.b'), 'forFeature(g).topicVariables.T');
  });
});
