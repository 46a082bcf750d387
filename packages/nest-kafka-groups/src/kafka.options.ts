import type { FactoryProvider, InjectionToken, ModuleMetadata, Type } from '@nestjs/common';
import type { KafkaConfig, RetryOptions, SASLOptions } from './client/kafkajs.js';
import { type KafkaCompression, zstdCompressionAvailable } from './client/codecs.js';
import { KafkaConfigurationError } from './errors/kafka-configuration.error.js';
import { retryTopicDelays } from './retry/retry-topic-chain.js';
import type { KafkaRebalanceListener } from './server/rebalance-listener.js';

export type { KafkaCompression } from './client/codecs.js';

const COMPRESSIONS: readonly KafkaCompression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** How a failing handler is retried: `attempts` counts every delivery, the first one included. */
export interface KafkaRetryOptions {
  attempts: number;
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  /**
   * Non-blocking retries through retry topics (Spring Kafka's): a failed message is written to the retry topic of
   * its next attempt and committed, its partition flows on, and the group handles it there once its delay passed;
   * after the last one it goes to the dead-letter topic. Default false (retries on the paused partition).
   */
  topics?: boolean;
  /** With `topics`: the delay before each retry, one retry topic each. Default: the backoff above, `attempts - 1` delays. */
  delaysMs?: number[];
  /** With `topics`: retry topic names are `<topic><topicSuffix>-<delay>`. Default `-retry` (Spring's). */
  topicSuffix?: string;
  /** With `topics`: end the names with the delay (default, Spring's default) or the 0-based index. */
  topicSuffixing?: 'delay' | 'index';
  /** With `topics`: names each retry topic instead (`index` 0 is the first retry). */
  topicName?: (sourceTopic: string, delayMs: number, index: number) => string;
}

/** Where a message goes after its last failed attempt, and how that write is bounded. */
export interface KafkaDeadLetterOptions {
  /** When false, a message that exhausts its retries stops its partition (nothing is skipped). */
  enabled: boolean;
  /** Dead-letter topic for a source topic; default `<topic>-dlt` (Spring Kafka 3.3+ naming). */
  topic?: string | ((sourceTopic: string) => string);
  /** Per write: how long to wait for the broker before the write counts as failed. */
  timeoutMs: number;
  /** Delay before a failed dead-letter write is tried again (the partition waits meanwhile). */
  retryDelayMs: number;
}

/**
 * Topic provisioning: at start-up, before its members join, each group's topics and their dead-letter topics are
 * created when missing (with `create`), or checked (without: a missing topic keeps the group from starting and
 * `/health` names it). Existing topics are never changed.
 */
export interface KafkaTopicOptions {
  /** Create missing topics. Default true, except when NODE_ENV is "production". */
  create?: boolean;
  /**
   * Without `create`: check that the topics exist before the members join. Default true; false leaves a missing
   * topic to the consumers (a member that cannot start, recreated with backoff).
   */
  check?: boolean;
  /** Partitions of a created topic. Default: the broker's `num.partitions`. */
  partitions?: number;
  /** Replication factor of a created topic. Default: the broker's `default.replication.factor`. */
  replicationFactor?: number;
  /** Topic configuration of a created topic, e.g. `{ 'retention.ms': '604800000' }`. */
  config?: Record<string, string>;
}

/**
 * Bounds on one message, checked before the handler's pipeline runs. A message over any of them fails with
 * KafkaMessageLimitError (not retried) and is dead-lettered; nothing is allocated in proportion to the excess.
 */
export interface KafkaMessageLimits {
  /** Headers per message (a repeated header name counts once per value). */
  maxHeaders: number;
  /** Header names plus values, in bytes, per message. */
  maxHeaderBytes: number;
  /** Value bytes handed to the JSON decoder or, for a raw handler, to the handler. */
  maxValueBytes: number;
  /** Nesting of JSON objects and arrays (`{}` is depth 1). */
  maxJsonDepth: number;
  /** Object keys in the decoded JSON value, all levels together. */
  maxJsonKeys: number;
}

/** Backoff before a member whose consumer could not start, or crashed for good, is created again. */
export interface KafkaRestartBackoff {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** kafkajs consumer tuning, passed through unchanged. */
export interface KafkaConsumerTuning {
  sessionTimeout?: number;
  rebalanceTimeout?: number;
  heartbeatInterval?: number;
  maxWaitTimeInMs?: number;
  minBytes?: number;
  maxBytes?: number;
  maxBytesPerPartition?: number;
  /**
   * How old the cluster metadata may get before it is fetched again (kafkajs's `metadataMaxAge`, Java's
   * `metadata.max.age.ms`): partitions added to a topic are noticed within this time. Default 300000 (5 min).
   */
  metadataMaxAge?: number;
}

/** Settings every group inherits unless its `forFeature` or handler overrides them. */
export interface KafkaGroupDefaults {
  /** Members of the group this process runs (Spring's meaning). Default 1. */
  concurrency?: number;
  /** Partitions of one member processed at the same time. Default 4. */
  partitionsConsumedConcurrently?: number;
  /** Where a group with no committed offset starts. Default false (latest). */
  fromBeginning?: boolean;
  /** Retries of a failing handler. Default 3 attempts, 500 ms, x2, at most 10 s. */
  retry?: Partial<KafkaRetryOptions>;
  /** Dead letters after the last attempt. Default on, `<topic>-dlt`, 10 s per write, retried after 2 s. */
  deadLetter?: Partial<KafkaDeadLetterOptions>;
  /** Bounds checked before the pipeline (headers, value size, JSON depth and keys); see DEFAULT_LIMITS. */
  limits?: Partial<KafkaMessageLimits>;
  consumer?: KafkaConsumerTuning;
  topics?: KafkaTopicOptions;
  /**
   * Longest a handler may run on one message (Java's `max.poll.interval.ms`). The member heartbeats while a
   * handler runs, so a slow handler keeps its partition; past this bound its `ctx.signal` is aborted and the
   * delivery counts as a failed attempt once the handler gave up. Default 300000 (5 min).
   */
  maxProcessingTimeMs?: number;
  /**
   * Longest time a processed offset waits before it is committed (kafkajs's `autoCommitInterval`). Offsets are also
   * committed before the member leaves the group (stop, rebalance), on a handler error and when a crash is handled,
   * so a longer interval only widens what a killed process redelivers. 0 commits after every fetched batch (one
   * group-coordinator round trip per fetch cycle, which kafkajs waits for before fetching again). Default 1000.
   */
  commitIntervalMs?: number;
}

/** `KafkaModule.forRoot`: the connection, and the defaults of every group. */
export interface KafkaModuleOptions extends KafkaGroupDefaults {
  /** Bootstrap brokers, `host:port` each. */
  brokers: string[];
  /** kafkajs client id (broker logs and quotas). Default `nest-kafka-groups`. */
  clientId?: string;
  /** TLS, passed to kafkajs as given (`true`, or `tls.connect` options). */
  ssl?: KafkaConfig['ssl'];
  /** SASL (plain, scram-sha-256, scram-sha-512, aws, oauthbearer), passed to kafkajs as given. */
  sasl?: SASLOptions;
  /** Milliseconds to establish a connection (kafkajs default 1000). */
  connectionTimeout?: number;
  /** Milliseconds a request may take (kafkajs default 30000). */
  requestTimeout?: number;
  /** kafkajs client retry (connections, requests). Passed explicitly because NODE_ENV=test changes its defaults. */
  clientRetry?: RetryOptions;
  /** Bound on draining in-flight handlers at shutdown. Default 30000. */
  shutdownTimeoutMs?: number;
  /** Delays between attempts to recreate a member that could not start or crashed for good. Default 1 s, x2, max 10 s. */
  restartBackoff?: Partial<KafkaRestartBackoff>;
  /**
   * Codec of the record batches KafkaProducer and the dead-letter publisher write: 'none' (default), 'gzip',
   * 'snappy', 'lz4' or 'zstd' (zstd needs Node.js 22.15+ to produce). Consumers read all of them whatever this is.
   */
  compression?: KafkaCompression;
  /**
   * Bound on one fetched record batch once decompressed, any codec; a batch over it is dead-lettered whole (or its
   * partition stops with dead letters off). Process-wide: the codecs belong to the library's kafkajs instance.
   * Default 64 MiB.
   */
  maxDecompressedBatchBytes?: number;
}

/** A class that builds the root options, for `KafkaModule.forRootAsync({ useClass })` or `({ useExisting })`. */
export interface KafkaOptionsFactory {
  createKafkaOptions(): KafkaModuleOptions | Promise<KafkaModuleOptions>;
}

/**
 * `KafkaModule.forRootAsync`: exactly one of `useFactory` (with `inject`), `useClass` (a KafkaOptionsFactory the
 * module instantiates) or `useExisting` (a KafkaOptionsFactory provider of `imports`).
 */
export interface KafkaModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => KafkaModuleOptions | Promise<KafkaModuleOptions>;
  inject?: FactoryProvider['inject'];
  useClass?: Type<KafkaOptionsFactory>;
  useExisting?: InjectionToken<KafkaOptionsFactory>;
}

/** `KafkaModule.forFeature`: the consumer group of the module's `@KafkaHandler` methods, and its overrides. */
export interface KafkaFeatureOptions extends KafkaGroupDefaults {
  /** The consumer group id; two modules naming the same id are one group. */
  groupId: string;
  /**
   * Values for `${NAME}` placeholders in this module's `@KafkaHandler` topics, so topic names can come from
   * configuration: `@KafkaHandler('${AIRNAV_TOPIC}')` with `topicVariables: { AIRNAV_TOPIC: config.get(...) }`.
   */
  topicVariables?: Record<string, string>;
  /**
   * false: the group's members do not start with the application; `KafkaGroups.start(groupId)` starts them.
   * Default true.
   */
  autoStart?: boolean;
  /**
   * A class implementing KafkaRebalanceListener, listed in this module's `providers`: told when each member of
   * the group in this process is assigned, revoked or loses partitions (README "Rebalance listener"). None by default.
   */
  rebalanceListener?: Type<KafkaRebalanceListener>;
}

/** A class that builds a group's options, for `KafkaModule.forFeatureAsync({ useClass })` or `({ useExisting })`. */
export interface KafkaFeatureOptionsFactory {
  createKafkaFeatureOptions(): KafkaFeatureOptions | Promise<KafkaFeatureOptions>;
}

/**
 * `KafkaModule.forFeatureAsync`: exactly one of `useFactory` (with `inject`), `useClass` (a
 * KafkaFeatureOptionsFactory the module instantiates) or `useExisting` (a KafkaFeatureOptionsFactory provider of
 * `imports`).
 */
export interface KafkaFeatureAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => KafkaFeatureOptions | Promise<KafkaFeatureOptions>;
  inject?: FactoryProvider['inject'];
  useClass?: Type<KafkaFeatureOptionsFactory>;
  useExisting?: InjectionToken<KafkaFeatureOptionsFactory>;
}

/** `@KafkaHandler(topics, options)`: overrides for this handler's topics. */
export interface KafkaHandlerOptions {
  /** Retries of this handler (over the group's and the root's). */
  retry?: Partial<KafkaRetryOptions>;
  /** Dead letters of this handler (over the group's and the root's). */
  deadLetter?: Partial<KafkaDeadLetterOptions>;
  /** Provisioning of this handler's topics and dead-letter topics (over the group's and the root's). */
  topics?: KafkaTopicOptions;
  /** Message limits of this handler (over the group's and the root's). */
  limits?: Partial<KafkaMessageLimits>;
  /** Hand the handler the raw value bytes (Buffer) instead of decoded JSON. */
  raw?: boolean;
  /**
   * Batch handler: the method receives the messages fetched for one partition, in offset order, as one array
   * (`@Payload() items: T[]`, `@Ctx() ctx: KafkaBatchContext`). See the README's "Batch handlers".
   */
  batch?: boolean;
  /** With `batch`: most messages per call. Default 500 (Java's `max.poll.records`). */
  maxBatchSize?: number;
  /**
   * With `batch`: the class of one element (TypeScript only records `Array` for `T[]`). Each element then goes
   * through the handler's pipes (the global ValidationPipe included) with this metatype before the call, and an
   * element they reject is dead-lettered alone; like ParseArrayPipe's `items`.
   */
  items?: Type;
}

/** Fully resolved settings of one handler: root defaults, then the group's, then the handler's own. */
export interface ResolvedHandlerSettings {
  retry: KafkaRetryOptions;
  deadLetter: KafkaDeadLetterOptions;
  topics: ResolvedTopicOptions;
  limits: KafkaMessageLimits;
  raw: boolean;
}

export interface ResolvedTopicOptions extends KafkaTopicOptions {
  create: boolean;
  config: Record<string, string>;
}

export interface ResolvedGroupSettings {
  groupId: string;
  concurrency: number;
  partitionsConsumedConcurrently: number;
  fromBeginning: boolean;
  consumer: KafkaConsumerTuning;
  maxProcessingTimeMs: number;
  commitIntervalMs: number;
  autoStart: boolean;
}

export const DEFAULT_RETRY: KafkaRetryOptions = {
  attempts: 3,
  initialDelayMs: 500,
  multiplier: 2,
  maxDelayMs: 10_000,
};
export const DEFAULT_DEAD_LETTER: KafkaDeadLetterOptions = {
  enabled: true,
  timeoutMs: 10_000,
  retryDelayMs: 2_000,
};
/**
 * Far above what a well-formed message carries, far below what blocks the event loop: class-transformer's
 * plainToInstance is quadratic in an object's keys and recursive in its depth.
 */
export const DEFAULT_LIMITS: KafkaMessageLimits = {
  maxHeaders: 256,
  maxHeaderBytes: 64 * 1024,
  maxValueBytes: 1024 * 1024,
  maxJsonDepth: 128,
  maxJsonKeys: 10_000,
};
export const DEFAULT_MAX_BATCH_SIZE = 500;
export const DEFAULT_CONCURRENCY = 1;
export const DEFAULT_PARTITIONS_CONSUMED_CONCURRENTLY = 4;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_PROCESSING_TIME_MS = 300_000;
// Why this value: docs/RELIABILITY.md, "Commit interval".
export const DEFAULT_COMMIT_INTERVAL_MS = 1_000;
export const DEFAULT_RESTART_BACKOFF: KafkaRestartBackoff = { initialDelayMs: 1_000, maxDelayMs: 10_000 };
/**
 * kafkajs waits up to 5 s per fetch and only heartbeats between fetches, so an idle member noticed a rebalance
 * late; 500 ms (Spring's fetch.max.wait.ms) makes joins and leaves settle in about a second.
 */
export const DEFAULT_CONSUMER_TUNING: KafkaConsumerTuning = { maxWaitTimeInMs: 500 };

function requirePositiveInteger(setting: string, value: unknown, min = 1): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new KafkaConfigurationError(setting, `expected an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
}

function requireNumberAtLeast(setting: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new KafkaConfigurationError(setting, `expected a number >= ${min}, got ${JSON.stringify(value)}`);
  }
}

function validateDefaults(scope: string, options: KafkaGroupDefaults): void {
  requirePositiveInteger(`${scope}.concurrency`, options.concurrency);
  requirePositiveInteger(`${scope}.partitionsConsumedConcurrently`, options.partitionsConsumedConcurrently);
  requirePositiveInteger(`${scope}.maxProcessingTimeMs`, options.maxProcessingTimeMs);
  requirePositiveInteger(`${scope}.commitIntervalMs`, options.commitIntervalMs, 0);
  validateRetry(`${scope}.retry`, options.retry);
  validateDeadLetter(`${scope}.deadLetter`, options.deadLetter);
  validateTopics(`${scope}.topics`, options.topics);
  validateLimits(`${scope}.limits`, options.limits);
  const consumer = options.consumer ?? {};
  for (const key of Object.keys(consumer) as (keyof KafkaConsumerTuning)[]) {
    requirePositiveInteger(`${scope}.consumer.${key}`, consumer[key], 0);
  }
}

function validateTopics(scope: string, topics: KafkaTopicOptions | undefined): void {
  if (!topics) return;
  if (topics.create !== undefined && typeof topics.create !== 'boolean') {
    throw new KafkaConfigurationError(
      `${scope}.create`,
      `expected true or false, got ${JSON.stringify(topics.create)}`,
    );
  }
  requirePositiveInteger(`${scope}.partitions`, topics.partitions);
  requirePositiveInteger(`${scope}.replicationFactor`, topics.replicationFactor);
  for (const [name, value] of Object.entries(topics.config ?? {})) {
    if (typeof value !== 'string') {
      throw new KafkaConfigurationError(
        `${scope}.config.${name}`,
        `expected a string, got ${JSON.stringify(value)}`,
      );
    }
  }
}

function validateRetry(scope: string, retry: Partial<KafkaRetryOptions> | undefined): void {
  if (!retry) return;
  requirePositiveInteger(`${scope}.attempts`, retry.attempts);
  requireNumberAtLeast(`${scope}.initialDelayMs`, retry.initialDelayMs, 0);
  requireNumberAtLeast(`${scope}.multiplier`, retry.multiplier, 1);
  requireNumberAtLeast(`${scope}.maxDelayMs`, retry.maxDelayMs, 0);
  validateRetryTopics(scope, retry);
}

function validateRetryTopics(scope: string, retry: Partial<KafkaRetryOptions>): void {
  if (retry.topics !== undefined && typeof retry.topics !== 'boolean') {
    throw new KafkaConfigurationError(
      `${scope}.topics`,
      `expected true or false, got ${JSON.stringify(retry.topics)}`,
    );
  }
  const { delaysMs, topicSuffix, topicSuffixing, topicName } = retry;
  if (delaysMs !== undefined) {
    if (!Array.isArray(delaysMs)) {
      throw new KafkaConfigurationError(
        `${scope}.delaysMs`,
        `expected an array of delays, got ${JSON.stringify(delaysMs)}`,
      );
    }
    // Integers: they become topic names.
    for (let index = 0; index < delaysMs.length; index++) {
      requirePositiveInteger(`${scope}.delaysMs[${index}]`, delaysMs[index] ?? Number.NaN, 0);
    }
  }
  if (topicSuffix !== undefined && (typeof topicSuffix !== 'string' || topicSuffix === '')) {
    throw new KafkaConfigurationError(`${scope}.topicSuffix`, 'expected a non-empty string such as "-retry"');
  }
  if (topicSuffixing !== undefined && topicSuffixing !== 'delay' && topicSuffixing !== 'index') {
    throw new KafkaConfigurationError(
      `${scope}.topicSuffixing`,
      `expected "delay" or "index", got ${JSON.stringify(topicSuffixing)}`,
    );
  }
  if (topicName !== undefined && typeof topicName !== 'function') {
    throw new KafkaConfigurationError(
      `${scope}.topicName`,
      'expected a function (sourceTopic, delayMs, index) => name',
    );
  }
}

function validateDeadLetter(scope: string, deadLetter: Partial<KafkaDeadLetterOptions> | undefined): void {
  if (!deadLetter) return;
  const { topic } = deadLetter;
  if (
    topic !== undefined &&
    typeof topic !== 'function' &&
    (typeof topic !== 'string' || topic.trim() === '')
  ) {
    throw new KafkaConfigurationError(`${scope}.topic`, 'expected a non-empty topic name or a function');
  }
  requireNumberAtLeast(`${scope}.timeoutMs`, deadLetter.timeoutMs, 1);
  requireNumberAtLeast(`${scope}.retryDelayMs`, deadLetter.retryDelayMs, 0);
}

function validateLimits(scope: string, limits: Partial<KafkaMessageLimits> | undefined): void {
  if (!limits) return;
  for (const key of Object.keys(limits) as (keyof KafkaMessageLimits)[]) {
    if (!(key in DEFAULT_LIMITS)) {
      throw new KafkaConfigurationError(
        `${scope}.${key}`,
        `unknown limit; known: ${Object.keys(DEFAULT_LIMITS).join(', ')}`,
      );
    }
    requirePositiveInteger(`${scope}.${key}`, limits[key]);
  }
}

/** kafkajs 2.2.4's built-in SASL mechanisms; another needs its own `authenticationProvider`. */
const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer', 'aws'];

/**
 * A SASL setting kafkajs would only reject at the first connection, with a TypeError naming no setting (a missing
 * mechanism) or "Invalid username or password". Values are never quoted: they may be secrets.
 */
function validateSasl(sasl: KafkaModuleOptions['sasl'] | null): void {
  if (sasl === undefined || sasl === null) return;
  const options = sasl as unknown as Record<string, unknown>;
  const { mechanism } = options;
  const known = typeof mechanism === 'string' && SASL_MECHANISMS.includes(mechanism.toLowerCase());
  if (typeof mechanism !== 'string' || (!known && typeof options.authenticationProvider !== 'function')) {
    throw new KafkaConfigurationError(
      'forRoot.sasl.mechanism',
      `expected one of ${SASL_MECHANISMS.join(', ')} (or a custom mechanism with an authenticationProvider), got ` +
        (typeof mechanism === 'string' ? JSON.stringify(mechanism) : String(mechanism)),
    );
  }
  const name = mechanism.toLowerCase();
  if (name === 'plain' || name.startsWith('scram-')) {
    if (typeof options.username !== 'string' || options.username === '') {
      throw new KafkaConfigurationError(
        'forRoot.sasl.username',
        `expected a user name for SASL ${name.toUpperCase()}`,
      );
    }
    if (typeof options.password !== 'string') {
      throw new KafkaConfigurationError(
        'forRoot.sasl.password',
        `expected a password for SASL ${name.toUpperCase()}`,
      );
    }
  }
  if (name === 'oauthbearer' && typeof options.oauthBearerProvider !== 'function') {
    throw new KafkaConfigurationError(
      'forRoot.sasl.oauthBearerProvider',
      'expected a function resolving to { value: token } for SASL OAUTHBEARER',
    );
  }
}

export function validateModuleOptions(options: KafkaModuleOptions): KafkaModuleOptions {
  if (!options || !Array.isArray(options.brokers) || options.brokers.length === 0) {
    throw new KafkaConfigurationError('forRoot.brokers', 'expected at least one "host:port" broker address');
  }
  for (const broker of options.brokers) {
    if (typeof broker !== 'string' || !/^[^\s:]+:\d+$/.test(broker)) {
      throw new KafkaConfigurationError('forRoot.brokers', `"${broker}" is not a "host:port" address`);
    }
  }
  requirePositiveInteger('forRoot.shutdownTimeoutMs', options.shutdownTimeoutMs);
  requirePositiveInteger('forRoot.maxDecompressedBatchBytes', options.maxDecompressedBatchBytes);
  if (options.compression !== undefined && !COMPRESSIONS.includes(options.compression)) {
    throw new KafkaConfigurationError(
      'forRoot.compression',
      `expected one of ${COMPRESSIONS.join(', ')}, got ${JSON.stringify(options.compression)}`,
    );
  }
  if (options.compression === 'zstd' && !zstdCompressionAvailable) {
    throw new KafkaConfigurationError(
      'forRoot.compression',
      `zstd needs Node.js 22.15 or newer to produce (this is ${process.version}); consuming zstd works on any version`,
    );
  }
  validateSasl(options.sasl);
  requirePositiveInteger('forRoot.restartBackoff.initialDelayMs', options.restartBackoff?.initialDelayMs);
  requirePositiveInteger('forRoot.restartBackoff.maxDelayMs', options.restartBackoff?.maxDelayMs);
  validateDefaults('forRoot', options);
  return options;
}

export function validateFeatureOptions(options: KafkaFeatureOptions): KafkaFeatureOptions {
  if (!options || typeof options.groupId !== 'string' || options.groupId.trim() === '') {
    throw new KafkaConfigurationError('forFeature.groupId', 'expected a non-empty consumer group id');
  }
  validateDefaults(`forFeature(${options.groupId})`, options);
  if (options.autoStart !== undefined && typeof options.autoStart !== 'boolean') {
    throw new KafkaConfigurationError(
      `forFeature(${options.groupId}).autoStart`,
      `expected true or false, got ${JSON.stringify(options.autoStart)}`,
    );
  }
  if (options.rebalanceListener !== undefined && typeof options.rebalanceListener !== 'function') {
    throw new KafkaConfigurationError(
      `forFeature(${options.groupId}).rebalanceListener`,
      'expected a class implementing KafkaRebalanceListener (a provider of the same module)',
    );
  }
  return options;
}

export function validateHandlerOptions(scope: string, options: KafkaHandlerOptions): void {
  validateRetry(`${scope}.retry`, options.retry);
  validateDeadLetter(`${scope}.deadLetter`, options.deadLetter);
  validateLimits(`${scope}.limits`, options.limits);
  validateBatch(scope, options);
}

function validateBatch(scope: string, options: KafkaHandlerOptions): void {
  if (options.batch !== undefined && typeof options.batch !== 'boolean') {
    throw new KafkaConfigurationError(
      `${scope}.batch`,
      `expected true or false, got ${JSON.stringify(options.batch)}`,
    );
  }
  requirePositiveInteger(`${scope}.maxBatchSize`, options.maxBatchSize);
  if (options.items !== undefined && typeof options.items !== 'function') {
    throw new KafkaConfigurationError(`${scope}.items`, 'expected a class (the type of one batch element)');
  }
  for (const setting of ['maxBatchSize', 'items'] as const) {
    if (options[setting] !== undefined && options.batch !== true) {
      throw new KafkaConfigurationError(
        `${scope}.${setting}`,
        'only applies to a batch handler: add batch: true',
      );
    }
  }
}

export function resolveRestartBackoff(root: KafkaModuleOptions): KafkaRestartBackoff {
  return { ...DEFAULT_RESTART_BACKOFF, ...root.restartBackoff };
}

export function resolveGroupSettings(
  root: KafkaModuleOptions,
  feature: KafkaFeatureOptions,
): ResolvedGroupSettings {
  return {
    groupId: feature.groupId,
    concurrency: feature.concurrency ?? root.concurrency ?? DEFAULT_CONCURRENCY,
    partitionsConsumedConcurrently:
      feature.partitionsConsumedConcurrently ??
      root.partitionsConsumedConcurrently ??
      DEFAULT_PARTITIONS_CONSUMED_CONCURRENTLY,
    fromBeginning: feature.fromBeginning ?? root.fromBeginning ?? false,
    consumer: { ...DEFAULT_CONSUMER_TUNING, ...root.consumer, ...feature.consumer },
    maxProcessingTimeMs:
      feature.maxProcessingTimeMs ?? root.maxProcessingTimeMs ?? DEFAULT_MAX_PROCESSING_TIME_MS,
    commitIntervalMs: feature.commitIntervalMs ?? root.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS,
    autoStart: feature.autoStart ?? true,
  };
}

export function resolveHandlerSettings(
  root: KafkaModuleOptions,
  feature: KafkaFeatureOptions,
  handler: KafkaHandlerOptions,
): ResolvedHandlerSettings {
  return {
    retry: resolveRetry({ ...DEFAULT_RETRY, ...root.retry, ...feature.retry, ...handler.retry }),
    deadLetter: { ...DEFAULT_DEAD_LETTER, ...root.deadLetter, ...feature.deadLetter, ...handler.deadLetter },
    topics: resolveTopicOptions(root.topics, feature.topics, handler.topics),
    limits: { ...DEFAULT_LIMITS, ...root.limits, ...feature.limits, ...handler.limits },
    raw: handler.raw ?? false,
  };
}

/** With retry topics on, their delays are settled here once (given, or derived from the backoff). */
function resolveRetry(retry: KafkaRetryOptions): KafkaRetryOptions {
  return retry.topics ? { ...retry, delaysMs: retryTopicDelays(retry) } : retry;
}

/** Topics are created by default, except in production, where they are usually provisioned by other means. */
export function defaultCreateTopics(): boolean {
  return process.env.NODE_ENV !== 'production';
}

function resolveTopicOptions(...levels: (KafkaTopicOptions | undefined)[]): ResolvedTopicOptions {
  const merged: KafkaTopicOptions = Object.assign({}, ...levels);
  return {
    ...merged,
    create: merged.create ?? defaultCreateTopics(),
    config: Object.assign({}, ...levels.map((level) => level?.config)),
  };
}

const TOPIC_PLACEHOLDER = /\$\{(\w+)\}/g;

/** A declared topic with its `${NAME}` placeholders replaced from the group's `topicVariables`. */
export function resolveTopic(
  declared: string,
  feature: KafkaFeatureOptions | undefined,
  where: string,
): string {
  return declared.replace(TOPIC_PLACEHOLDER, (_, name: string) => {
    const value = feature?.topicVariables?.[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new KafkaConfigurationError(
        `forFeature(${feature?.groupId ?? '?'}).topicVariables.${name}`,
        `${where} subscribes to "${declared}" but no value is given for ${name}`,
      );
    }
    return value;
  });
}

export function deadLetterTopicFor(sourceTopic: string, deadLetter: KafkaDeadLetterOptions): string {
  const { topic } = deadLetter;
  if (typeof topic === 'function') return topic(sourceTopic);
  return topic ?? `${sourceTopic}-dlt`;
}
