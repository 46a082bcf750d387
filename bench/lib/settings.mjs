/**
 * Settings shared by the orchestrator (bench/run.mjs) and the system children (bench/systems/*.mjs): one place,
 * so every system gets the same fetch settings and partition concurrency.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(BENCH_DIR, '..');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const PROFILES_DIR = join(RESULTS_DIR, 'profiles');

/**
 * The systems, in the order they run in every round. `key` is the name used in latest.json; `job` is merged into
 * the job a run's child gets (the validated systems reuse c's and d's files with a global validation pipe).
 */
export const SYSTEMS = [
  {
    id: 'a',
    key: 'kafkajsEachMessage',
    label: 'kafkajs eachMessage',
    description: 'raw kafkajs `eachMessage`, auto-commit',
    file: 'a-kafkajs-each-message.mjs',
  },
  {
    id: 'b',
    key: 'kafkajsEachBatch',
    label: 'kafkajs eachBatch',
    description: 'raw kafkajs `eachBatch`, offset resolved per message, committed per batch (upper bound)',
    file: 'b-kafkajs-each-batch.mjs',
  },
  {
    id: 'c',
    key: 'nestKafka',
    label: 'Nest Transport.KAFKA',
    description: '@nestjs/microservices built-in Kafka transport, `@EventPattern`',
    file: 'c-nest-kafka.mjs',
  },
  {
    id: 'd',
    key: 'kafkaGroups',
    label: 'this project (@KafkaHandler)',
    description:
      "this project: `@KafkaHandler` through Nest's pipeline, commit after success, retries and dead letters on",
    file: 'd-kafka-groups.mjs',
  },
  {
    id: 'e',
    key: 'kafkaGroupsBatch',
    label: 'this project, batch handler',
    description:
      'this project: `@KafkaHandler(topic, { batch: true })`, one call per fetched partition batch, commit after success',
    file: 'e-kafka-groups-batch.mjs',
  },
  {
    id: 'j',
    key: 'java',
    label: 'Java KafkaConsumer (reference)',
    description:
      'plain Java consumer (kafka-clients of the broker), one thread, Jackson parse, commitSync after each poll',
    file: 'j-java.mjs',
  },
  {
    id: 'c+v',
    key: 'nestKafkaValidated',
    label: 'Nest Transport.KAFKA + ValidationPipe',
    description: "c with a global ValidationPipe (the example's options) and the flight DTO on `@Payload()`",
    file: 'c-nest-kafka.mjs',
    job: { validate: 'plain' },
  },
  {
    id: 'd+v',
    key: 'kafkaGroupsValidated',
    label: 'this project + CompiledValidationPipe',
    description:
      "d with a global CompiledValidationPipe (the library's opt-in ValidationPipe, the example's options) and the flight DTO on `@Payload()`",
    file: 'd-kafka-groups.mjs',
    job: { validate: 'compiled' },
  },
  {
    id: 'd+vp',
    key: 'kafkaGroupsValidatedPlainPipe',
    label: 'this project + ValidationPipe',
    description:
      "d with the same global ValidationPipe as c+v (the example's options) and the flight DTO on `@Payload()`",
    file: 'd-kafka-groups.mjs',
    job: { validate: 'plain' },
  },
];

export const SYSTEM_BY_ID = new Map(SYSTEMS.map((s) => [s.id, s]));

export const PARTITIONS = 6;

/**
 * Fetch settings and concurrency, identical for a, b, d and e; c gets the same through its `consumer` and `run`
 * options, j the same values under Java's names (bench/systems/java/BenchConsumer.java). Session and heartbeat
 * are kafkajs's defaults; maxWaitTimeInMs only matters once the consumer caught up.
 */
export const CONSUMER_TUNING = {
  maxWaitTimeInMs: 100,
  minBytes: 1,
  maxBytes: 10_485_760,
  maxBytesPerPartition: 1_048_576,
  sessionTimeout: 30_000,
  rebalanceTimeout: 60_000,
  heartbeatInterval: 3_000,
};
/** The library's default (kafkajs's own default of 1 would run partitions one after another). */
export const PARTITIONS_CONSUMED_CONCURRENTLY = 4;
/** kafkajs client retry, passed explicitly everywhere (NODE_ENV=test would change kafkajs's defaults). */
export const CLIENT_RETRY = { initialRetryTime: 300, maxRetryTime: 30_000, retries: 8 };

/** Run sizes. `quick` is a sanity run; the defaults are the full benchmark. */
export const MODES = {
  full: {
    messages: 200_000,
    // The validated systems run 3 to 15 times slower than d: half the data set keeps their ratio's rounds as long
    // as the others' and, with 4 rounds of 9 systems, the full run under 8 minutes.
    validatedMessages: 100_000,
    rounds: 4,
    latency: { rate: 2_000, seconds: 10, warmupSeconds: 2, systems: ['a', 'b', 'c', 'd', 'e', 'j'] },
    soakMessages: 1_000_000,
  },
  quick: {
    messages: 20_000,
    validatedMessages: 20_000,
    rounds: 1,
    // A sanity run: latency of the baseline and the library's two handler kinds only, to stay under a minute.
    latency: { rate: 2_000, seconds: 2, warmupSeconds: 1, systems: ['a', 'd', 'e'] },
    soakMessages: 100_000,
  },
};

/**
 * The ratios of latest.json: subject's throughput over the baseline's, measured in the same run. `target` (when set)
 * must be reached both in wall clock and in CPU per message.
 */
export const RATIOS = [
  { name: 'vsKafkajsEachMessage', subject: 'd', base: 'a', target: 1.1 },
  { name: 'vsKafkajsEachBatch', subject: 'd', base: 'b', target: 1.0 },
  { name: 'vsNestKafka', subject: 'd', base: 'c', target: 1.0 },
  { name: 'vsKafkajsEachMessageBatchHandler', subject: 'e', base: 'a', target: 1.3 },
  { name: 'validatedVsNestKafka', subject: 'd+v', base: 'c+v', target: 2.5 },
  // The same pipe class on both sides (no library feature in d+vp): no target.
  { name: 'validatedPlainPipeVsNestKafka', subject: 'd+vp', base: 'c+v' },
  // The JVM reference: no target.
  { name: 'vsJava', subject: 'd', base: 'j' },
  { name: 'batchHandlerVsJava', subject: 'e', base: 'j' },
];

/** Latency targets for d at the latency phase's rate (issue 12, goal 3). */
export const LATENCY_TARGETS = { system: 'd', p50Ms: 3, p99Ms: 10 };
export const SOAK_SYSTEM = 'd';

/** Bumped whenever the generated data changes, so a kept topic from an older layout is never reused. */
export const DATASET_VERSION = 1;

export function topicFor(kind, messages) {
  return `bench-${kind}-v${DATASET_VERSION}-${messages}`;
}

export function brokersFrom(env = process.env) {
  return (env.KAFKA_BROKERS?.trim() || `127.0.0.1:${env.KAFKA_PORT ?? 9092}`).split(',').map((b) => b.trim());
}

/**
 * The compiled library the Nest children import: the package `nest-kafka-groups` (its dist/ after `npm run build`),
 * or BENCH_DIST/index.js (a private build while developing). Undefined when that file is not built.
 */
export function libraryEntry(env = process.env) {
  if (env.BENCH_DIST) return resolve(REPO_ROOT, env.BENCH_DIST, 'index.js');
  try {
    return fileURLToPath(import.meta.resolve('nest-kafka-groups'));
  } catch {
    return undefined;
  }
}
