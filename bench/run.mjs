#!/usr/bin/env node
/**
 * The benchmark (issue 6): this project's `@KafkaHandler` against raw kafkajs and NestJS's built-in Kafka transport.
 *
 *   npm run bench                      full run: 200k messages x 4 interleaved rounds (the validated systems
 *                                      100k), latency, 1M soak (~7 min)
 *   npm run bench -- --quick           sanity run: 20k messages, one round, short latency and soak (~1 min)
 *
 * Options (each overrides the mode's default):
 *   --rounds N  --messages N  --validated-messages N  --systems a,b,c,d,e,j,c+v,d+v,d+vp  --soak-messages N  --latency-rate N  --latency-seconds N
 *   --phases throughput,latency,soak,profile   which parts run (default: all but profile)
 *   --soak-no-gc          no forced GCs in the soak (memory as the process runs on its own; no after-GC samples)
 *   --profile [a,b,c,d]   also run one extra throughput run per listed system (default d) under `node --cpu-prof`
 *                         and summarise its hot path (bench/results/profiles/)
 *   --out FILE            results file (default bench/results/latest.json; quick.json for --quick, partial.json
 *                         when the throughput phase does not run)
 *   --docs / --no-docs    rewrite the results section of docs/BENCHMARKS.md (default: only after a full run)
 *   --drop-data           delete the data set topics at the end (kept by default on a reused broker, so the next
 *                         run skips producing them; a broker the run started is stopped with its data)
 *
 * Uses the broker at KAFKA_BROKERS (default 127.0.0.1:9092); when none answers, starts one with the local launcher
 * (scripts/kafka-local-lib.mjs), with the Java and JVM options of `benchBrokerJvm`, and stops it at the end. A
 * reused broker started with `-Xlog:gc,safepoint:file=<path>:time` can name that log in BENCH_BROKER_GC_LOG (its
 * pauses then show in the latency breakdown as for a broker the run started). Imports the compiled library (the package nest-kafka-groups, or BENCH_DIST): run
 * `npm run build` first (`npm run bench` does).
 */
import { fork } from 'node:child_process';
import kafkajs from 'kafkajs';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ensureBroker, localSettings, stopBroker } from '../scripts/kafka-local-lib.mjs';
import {
  createTopic,
  datasetChecksum,
  deleteTopic,
  ensureDataset,
  flightPosition,
  kafkaFor,
  topicExists,
} from './lib/dataset.mjs';
import { brokerJava, brokerJvmOptions } from './lib/broker-jvm.mjs';
import { brokerLatencyNice, setProcessNice } from './lib/broker-priority.mjs';
import { collectBrokerHeap, wantsBrokerCollection } from './lib/broker-heap.mjs';
import { launcherKafkaVersion, machineInfo, versions } from './lib/environment.mjs';
import { waitForStableGroup } from './lib/groups.mjs';
import { javaClasspath, javaClasspathEnv } from './lib/java.mjs';
import { writeBenchmarksDoc } from './lib/markdown.mjs';
import { ratiosOf, round, soakVerdict, throughputSummary } from './lib/stats.mjs';
import { RunTiming, Timeline, timingBySystem } from './lib/timeline.mjs';
import {
  BENCH_DIR,
  CLIENT_RETRY,
  CONSUMER_TUNING,
  LATENCY_TARGETS,
  libraryEntry,
  MODES,
  PARTITIONS,
  PARTITIONS_CONSUMED_CONCURRENTLY,
  PROFILES_DIR,
  RATIOS,
  REPO_ROOT,
  RESULTS_DIR,
  SOAK_SYSTEM,
  SYSTEM_BY_ID,
  SYSTEMS,
  topicFor,
} from './lib/settings.mjs';
import { formatSummary, summarizeProfile } from './profile-summary.mjs';

const PHASES = ['throughput', 'latency', 'soak', 'profile'];

const benchStarted = Date.now();
function log(message) {
  console.log(`[bench +${String(Math.round((Date.now() - benchStarted) / 1000)).padStart(3)}s] ${message}`);
}

class UsageError extends Error {}

function parseArgs(argv) {
  const args = [...argv];
  const options = { quick: false, docs: undefined, profile: undefined };
  const take = (name) => {
    const value = args.shift();
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
    return value;
  };
  const int = (name) => {
    const value = Number(take(name));
    if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} needs a positive integer`);
    return value;
  };
  const list = (name, allowed) => {
    const values = take(name)
      .split(',')
      .map((v) => v.trim());
    const bad = values.filter((v) => !allowed.includes(v));
    if (bad.length)
      throw new UsageError(`${name}: unknown ${bad.join(', ')} (choose from ${allowed.join(', ')})`);
    return values;
  };
  while (args.length) {
    const arg = args.shift();
    if (arg === '--quick') options.quick = true;
    else if (arg === '--rounds') options.rounds = int(arg);
    else if (arg === '--messages') options.messages = int(arg);
    else if (arg === '--validated-messages') options.validatedMessages = int(arg);
    else if (arg === '--soak-messages') options.soakMessages = int(arg);
    else if (arg === '--soak-no-gc') options.soakForcedGc = false;
    else if (arg === '--latency-rate') options.latencyRate = int(arg);
    else if (arg === '--latency-seconds') options.latencySeconds = int(arg);
    else if (arg === '--systems')
      options.systems = list(
        arg,
        SYSTEMS.map((s) => s.id),
      );
    else if (arg === '--phases') options.phases = list(arg, PHASES);
    else if (arg === '--profile') {
      options.profile =
        args[0] && !args[0].startsWith('--')
          ? list(
              arg,
              SYSTEMS.map((s) => s.id),
            )
          : ['d'];
    } else if (arg === '--out') options.out = resolve(take(arg));
    else if (arg === '--drop-data') options.dropData = true;
    else if (arg === '--docs') options.docs = true;
    else if (arg === '--no-docs') options.docs = false;
    else if (arg === '--help' || arg === '-h') options.help = true;
    else throw new UsageError(`unknown option ${arg}`);
  }
  const mode = MODES[options.quick ? 'quick' : 'full'];
  const phases = new Set(options.phases ?? ['throughput', 'latency', 'soak']);
  if (options.profile) phases.add('profile');
  return {
    help: options.help,
    mode: options.quick ? 'quick' : 'full',
    messages: options.messages ?? mode.messages,
    validatedMessages:
      options.validatedMessages ?? Math.min(mode.validatedMessages, options.messages ?? mode.messages),
    rounds: options.rounds ?? mode.rounds,
    systems: (options.systems ?? SYSTEMS.map((s) => s.id)).map((id) => SYSTEM_BY_ID.get(id)),
    phases,
    latency: {
      ...mode.latency,
      rate: options.latencyRate ?? mode.latency.rate,
      seconds: options.latencySeconds ?? mode.latency.seconds,
    },
    soakMessages: options.soakMessages ?? mode.soakMessages,
    soakForcedGc: options.soakForcedGc ?? true,
    profileSystems: (options.profile ?? ['d']).map((id) => SYSTEM_BY_ID.get(id)),
    // A sanity run never replaces the benchmark's record.
    out:
      options.out ??
      join(
        RESULTS_DIR,
        !phases.has('throughput') ? 'partial.json' : options.quick ? 'quick.json' : 'latest.json',
      ),
    dropData: options.dropData ?? false,
    docs: options.docs,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Children

let activeChild;
/**
 * The children's environment. Silences kafkajs's one-off partitioner notice (Nest's transport creates a producer
 * with the default); gets the Java classpath once it is built.
 */
const childEnv = { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' };

/**
 * Forks one system child for `job` and resolves when it exited: { result, stopped, error, exitCode }.
 * `onReady` runs once the child reports that its system started (the latency producer hooks in there).
 */
function runSystem(system, job, { execArgv = [], onReady } = {}) {
  return new Promise((resolvePromise) => {
    const outcome = { result: undefined, stopped: undefined, error: undefined, timing: new RunTiming() };
    const child = fork(join(BENCH_DIR, 'systems', system.file), [JSON.stringify({ ...job, ...system.job })], {
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: childEnv,
    });
    activeChild = child;
    let readyWork = Promise.resolve();
    child.on('message', (message) => {
      if (message.type === 'ready') outcome.timing.mark('ready');
      else if (message.type === 'result') outcome.timing.mark('result');
      if (message.type === 'ready' && onReady) {
        readyWork = onReady().catch((error) => {
          outcome.error = `after ready: ${error.stack ?? error}`;
          child.kill('SIGKILL');
        });
      } else if (message.type === 'result') outcome.result = message.result;
      else if (message.type === 'stopped') outcome.stopped = message;
      else if (message.type === 'error') outcome.error = message.error;
    });
    child.on('exit', async (code, signal) => {
      activeChild = undefined;
      outcome.timing.mark('exit');
      await readyWork;
      outcome.exitCode = code ?? signal;
      if (!outcome.result && !outcome.error)
        outcome.error = `child exited (${code ?? signal}) without a result`;
      resolvePromise(outcome);
    });
  });
}

/** A system's id as a topic, group or file name may carry it ('c+v' -> 'cv'). */
function slug(system) {
  return system.id.replace(/[^a-z0-9]/g, '');
}

function baseJob(settings, extra) {
  return {
    brokers: settings.brokerList,
    partitionsConsumedConcurrently: PARTITIONS_CONSUMED_CONCURRENTLY,
    // The Node systems import these themselves; system j maps them to Java's consumer properties.
    consumer: CONSUMER_TUNING,
    clientRetry: CLIENT_RETRY,
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Broker-side checks

/** True when the group committed every partition up to its end (offset = last offset + 1). */
async function committedToEnd(admin, groupId, topic, lastOffsets) {
  const [{ partitions }] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return partitions.every(({ partition, offset }) =>
    lastOffsets[partition] === undefined ? true : Number(offset) === Number(lastOffsets[partition]) + 1,
  );
}

async function deleteGroup(admin, groupId) {
  await admin.deleteGroups([groupId]).catch(() => undefined);
}

/**
 * On a fresh broker the first group lookup creates __consumer_offsets, and the first producer id waits for the
 * transaction coordinator to load; the client that asked logs errors (kafkajs: one ERROR line per refused request)
 * and waits. Done here, quietly, so that neither the data sets' producers nor the first measured run pay for it.
 */
async function warmUpCoordinators(brokers) {
  const quiet = new kafkajs.Kafka({
    clientId: 'bench-warm-up',
    brokers,
    logLevel: kafkajs.logLevel.NOTHING,
    retry: CLIENT_RETRY,
  });
  const admin = quiet.admin({ retry: CLIENT_RETRY });
  const producer = quiet.producer({ idempotent: true, maxInFlightRequests: 1, retry: CLIENT_RETRY });
  await admin.connect();
  try {
    await Promise.all([admin.describeGroups(['bench-warm-up']), producer.connect()]);
  } finally {
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  }
}

async function ensureTopic(admin, topic, partitions) {
  if (!(await topicExists(admin, topic))) await createTopic(admin, topic, partitions);
}

// ---------------------------------------------------------------------------------------------------------------
// Phases

function timeoutFor(messages) {
  return 120_000 + messages * 2;
}

/** A run whose messages do not match the data set (lost, repeated, foreign) failed, however fast it was. */
function checkAgainstDataset(outcome) {
  const verification = outcome.result?.verification;
  if (verification && !verification.ok)
    outcome.error = `the messages seen do not match the data set: ${verification.problems.join('; ')}`;
}

function describeRun(prefix, system, outcome) {
  if (!outcome.result || outcome.error)
    return `${prefix} ${system.id} ${system.label}: FAILED ${outcome.error}`;
  const r = outcome.result;
  return (
    `${prefix} ${system.id.padEnd(3)} ${system.label.padEnd(38)} ${Math.round(r.msgsPerSec).toLocaleString('en-US').padStart(7)} msg/s` +
    `  ${(r.firstToLastMs / 1000).toFixed(2).padStart(6)} s  cpu ${r.cpuUsPerMsg.toFixed(1).padStart(5)} µs/msg` +
    `  peak rss ${(r.peakRss / 2 ** 20).toFixed(0).padStart(4)} MB` +
    `  committed ${outcome.committedToEnd ? 'yes' : 'NO'}  load ${os.loadavg()[0].toFixed(2)}` +
    (r.jvm
      ? `  (jit ${Math.round(r.jvm.jitCompileMs)} ms, gc ${Math.round(r.jvm.gcMs)} ms, ${r.jvm.commits} commits waited ${Math.round(r.jvm.commitWaitMs)} ms)`
      : '')
  );
}

/**
 * The data set of `kind` and size `messages` with its dead-letter topic, made ready once per run (produced, or a
 * kept topic reused): resolves to { topic, data }.
 */
function datasetOf(ctx, kind, messages) {
  const topic = topicFor(kind, messages);
  if (!ctx.datasets.has(topic))
    ctx.datasets.set(
      topic,
      ctx.timeline.phase(`data set ${topic}`, async () => {
        const data = await ensureDataset(ctx.settings.brokerList, ctx.admin, topic, messages, log);
        await ensureTopic(ctx.admin, `${topic}-dlt`, 1);
        return { topic, data };
      }),
    );
  return ctx.datasets.get(topic);
}

/** Throughput and profile runs: the validated systems (validate in their job) read a smaller data set of the same kind. */
function throughputMessagesFor(options, system) {
  return system.job?.validate ? options.validatedMessages : options.messages;
}

/**
 * Every data set the run's phases read, made ready side by side before the first measured run, so that none is
 * produced while a system is measured and producing overlaps with the rest of the setup.
 */
async function prepareDatasets(ctx) {
  const { options } = ctx;
  const needed = [];
  if (options.phases.has('throughput'))
    for (const system of options.systems) needed.push(['flights', throughputMessagesFor(options, system)]);
  if (options.phases.has('profile')) needed.push(['flights', options.messages]);
  if (options.phases.has('soak')) needed.push(['soak', options.soakMessages]);
  await Promise.all(needed.map(([kind, messages]) => datasetOf(ctx, kind, messages)));
}

async function throughputPhase(ctx) {
  const { options, settings, admin } = ctx;
  const datasetFor = (messages) => datasetOf(ctx, 'flights', messages);
  const messagesFor = (system) => throughputMessagesFor(options, system);
  const runs = [];
  const byRound = [];
  log(
    `throughput: ${options.rounds} round(s) of ${options.systems.map((s) => s.id).join(' ')} over ${options.messages} messages` +
      (options.systems.some((s) => s.job?.validate)
        ? ` (the validated systems over ${options.validatedMessages})`
        : ''),
  );
  for (let round = 1; round <= options.rounds; round++) {
    const thisRound = {};
    for (const system of options.systems) {
      const groupId = `bench-${slug(system)}-${ctx.runTag}-r${round}`;
      const { topic, data } = await datasetFor(messagesFor(system));
      const outcome = await runSystem(
        system,
        baseJob(settings, {
          kind: 'throughput',
          topic,
          groupId,
          total: data.total,
          firstOffsets: data.firstOffsets,
          expectedChecksum: datasetChecksum(data.total),
          lastOffsets: data.lastOffsets,
          timeoutMs: timeoutFor(data.total),
        }),
      );
      if (outcome.result)
        outcome.committedToEnd = await committedToEnd(admin, groupId, topic, data.lastOffsets);
      checkAgainstDataset(outcome);
      await deleteGroup(admin, groupId);
      // System j's JIT warm-up pass (bench/systems/java/BenchConsumer.java).
      if (system.id === 'j') await deleteGroup(admin, `${groupId}-warmup`);
      outcome.timing.mark('checked');
      outcome.loadAverage = round2(os.loadavg()[0]);
      log(describeRun(`round ${round}/${options.rounds}`, system, outcome));
      thisRound[system.id] = outcome;
      runs.push({ round, system: system.id, ...outcome });
    }
    byRound.push(thisRound);
  }
  const systems = {};
  for (const system of options.systems) {
    const summary = throughputSummary(runs.filter((r) => r.system === system.id));
    systems[system.id] = { label: system.label, description: system.description, ...summary };
  }
  const { ratios, ratiosMedianPerRound, ratiosByCpu } = ratiosOf(systems, byRound, RATIOS);
  return {
    topic: topicFor('flights', options.messages),
    validatedTopic: options.systems.some((s) => s.job?.validate)
      ? topicFor('flights', options.validatedMessages)
      : undefined,
    valueBytesAverage: ctx.valueBytes,
    systems,
    ratios,
    ratiosMedianPerRound,
    ratiosByCpu,
    runs: runs.map((r) => ({
      round: r.round,
      system: r.system,
      msgsPerSec: round(r.result?.msgsPerSec),
      firstToLastMs: round(r.result?.firstToLastMs),
      cpuUsPerMsg: round(r.result?.cpuUsPerMsg, 1),
      peakRssMB: round((r.result?.peakRss ?? NaN) / 2 ** 20, 1),
      startToFirstMessageMs: round(r.result?.startToFirstMessageMs),
      // System j only: JIT and GC time inside its CPU time, and its synchronous commits' wait.
      jvm: r.result?.jvm,
      duplicates: r.result?.duplicates,
      committedToEnd: r.committedToEnd ?? false,
      stop: r.stopped ? { outcome: r.stopped.outcome, ms: round(r.stopped.stopMs) } : undefined,
      timing: r.timing.toJSON(),
      loadAverage: r.loadAverage,
      error: r.error,
    })),
  };
}

/** Numbers to 2 decimals, all the way down (the breakdown's summaries). */
function roundDeep(value) {
  if (typeof value === 'number') return round2(value);
  if (Array.isArray(value)) return value.map(roundDeep);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, roundDeep(v)]));
  return value;
}

function round2(value) {
  return Math.round(value * 100) / 100;
}

/**
 * Forks the latency generator (bench/lib/latency-generator.mjs) and resolves once its producer is connected, to
 * `{ go, kill }`: `go()` starts producing and resolves to what it measured of itself; `kill()` ends it.
 */
function startGenerator(job) {
  return new Promise((resolveReady, rejectReady) => {
    const child = fork(join(BENCH_DIR, 'lib', 'latency-generator.mjs'), [JSON.stringify(job)], {
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: childEnv,
    });
    let resolveDone;
    let rejectDone;
    const done = new Promise((res, rej) => {
      resolveDone = res;
      rejectDone = rej;
    });
    // Nobody awaits `done` when the consumer failed before the go.
    done.catch(() => undefined);
    let failure;
    child.on('message', (message) => {
      if (message.type === 'ready')
        resolveReady({
          go: () => {
            child.send({ type: 'go' });
            return done;
          },
          kill: () => child.kill('SIGKILL'),
        });
      else if (message.type === 'result') resolveDone(message.produced);
      else if (message.type === 'error') failure = message.error;
    });
    child.on('exit', (code, signal) => {
      const error = new Error(
        `latency generator: ${failure ?? `exited (${code ?? signal}) without a result`}`,
      );
      rejectReady(error);
      rejectDone(error);
    });
  });
}

async function latencyPhase(ctx) {
  const { options, settings, admin } = ctx;
  const { rate, seconds, warmupSeconds } = options.latency;
  const total = rate * (seconds + warmupSeconds);
  const warm = rate * warmupSeconds;
  const systems = {};
  // The validated pair measures the pipeline's throughput cost only.
  const measured = options.systems.filter((s) => options.latency.systems.includes(s.id));
  const topicOf = (system) => `bench-latency-${ctx.runTag}-${slug(system)}`;
  const topics = measured.flatMap((system) => [topicOf(system), `${topicOf(system)}-dlt`]);
  const brokerNice = raiseBrokerPriority(ctx);
  const collectsBrokerHeap = Boolean(ctx.brokerPid) && wantsBrokerCollection();
  if (!collectsBrokerHeap)
    log(
      `latency: the broker's heap is not collected before each run (${ctx.brokerPid ? 'BENCH_BROKER_COLLECT=0' : 'a broker this run did not start'})`,
    );
  try {
    // Every system's topics at once, before the first run: each run then finds the same topics in the broker.
    // Each record carries the broker's append time, which splits its latency (bench/lib/latency-probe.mjs).
    await Promise.all(
      measured.flatMap((system) => [
        createTopic(admin, topicOf(system), PARTITIONS, [
          { name: 'message.timestamp.type', value: 'LogAppendTime' },
        ]),
        createTopic(admin, `${topicOf(system)}-dlt`, 1),
      ]),
    );
    for (const system of measured) {
      const topic = topicOf(system);
      const groupId = `bench-latency-${slug(system)}-${ctx.runTag}`;
      // A generator per run, in its own process (bench/lib/latency-generator.mjs), for every system alike; it starts
      // beside the system and produces once the system's group is Stable.
      const generatorStarted = Date.now();
      // The broker's heap collected while the system starts, before its window (bench/lib/broker-heap.mjs).
      const brokerCollected = collectsBrokerHeap
        ? collectBrokerHeap(ctx.brokerPid, ctx.brokerJavaHome)
        : undefined;
      let brokerCollection = collectsBrokerHeap ? undefined : null;
      let generatorReadyMs;
      const generatorReady = startGenerator({ brokers: settings.brokerList, topic, rate, total, warm }).then(
        (generator) => {
          generatorReadyMs = Date.now() - generatorStarted;
          return generator;
        },
      );
      // Awaited once the system is ready, or to kill it; a failure before then is not unhandled.
      generatorReady.catch(() => undefined);
      let produced;
      const outcome = await runSystem(
        system,
        baseJob(settings, {
          kind: 'latency',
          brokerGcLog: ctx.brokerGcLog,
          topic,
          groupId,
          total,
          timeoutMs: timeoutFor(total) + seconds * 1000,
        }),
        {
          execArgv: latencyExecArgv(),
          onReady: async () => {
            await waitForStableGroup(admin, groupId, { partitions: PARTITIONS });
            if (brokerCollected) {
              brokerCollection = await brokerCollected;
              if (!brokerCollection.ok)
                log(`latency ${system.id}: the broker's heap not collected (${brokerCollection.reason})`);
            }
            produced = await (await generatorReady).go();
          },
        },
      ).finally(() =>
        generatorReady.then(
          (generator) => generator.kill(),
          () => undefined,
        ),
      );
      await deleteGroup(admin, groupId);
      outcome.timing.mark('checked');
      const timing = { generatorReadyMs: generatorReadyMs ?? null, ...outcome.timing.toJSON() };
      if (!outcome.result) {
        log(`latency ${system.id} ${system.label}: FAILED ${outcome.error}`);
        systems[system.id] = { label: system.label, error: outcome.error, timing };
        continue;
      }
      const l = outcome.result.latencies;
      const ms = (v) => round(v, 2);
      systems[system.id] = {
        label: system.label,
        p50Ms: ms(l.p50),
        p90Ms: ms(l.p90),
        p99Ms: ms(l.p99),
        p999Ms: ms(l.p999),
        maxMs: ms(l.max),
        meanMs: ms(l.mean),
        samples: l.count,
        producedRate: produced ? round(total / produced.seconds) : null,
        cpuUsPerMsg: round(outcome.result.cpuUsPerMsg, 1),
        load: roundDeep(outcome.result.load),
        // The monotonic clock of a `--cpu-prof` profile (BENCH_LATENCY_NODE_OPTIONS): the measured window.
        hrWindowUs: [outcome.result.hrFirstUs, outcome.result.hrLastUs],
        peakRssMB: round(outcome.result.peakRss / 2 ** 20, 1),
        jvm: outcome.result.jvm,
        producer: produced?.generator,
        // The broker's heap collected before the window: { ok, ms } or { ok: false, reason }; null when not asked.
        brokerCollection: brokerCollection ?? null,
        breakdown: roundDeep(outcome.result.breakdown),
        timing,
      };
      log(
        `latency ${system.id.padEnd(3)} ${system.label.padEnd(38)} p50 ${l.p50.toFixed(2)} ms  p99 ${l.p99.toFixed(2)} ms  ` +
          `max ${l.max.toFixed(1)} ms  (${l.count} samples at ${rate}/s)  load ${os.loadavg()[0].toFixed(2)}`,
      );
      const b = systems[system.id].breakdown;
      if (b) log(`  ${describeBreakdown(b, systems[system.id].producer)}`);
      const load = systems[system.id].load;
      if (load) log(`  ${describeLoad(load)}`);
    }
  } finally {
    brokerNice.restore?.();
    await Promise.all(topics.map((topic) => deleteTopic(admin, topic).catch(() => undefined)));
  }
  return {
    rate,
    seconds,
    warmupSeconds,
    brokerNice: brokerNice.nice,
    brokerNiceNote: brokerNice.reason,
    brokerCollected: collectsBrokerHeap,
    systems,
  };
}

/**
 * Node options for the latency phase's system children, every system alike: BENCH_LATENCY_NODE_OPTIONS, split on
 * spaces (e.g. `--cpu-prof --cpu-prof-dir=<dir>` or `--heap-prof`, which NODE_OPTIONS refuses), to profile a
 * system at the latency phase's rate. None by default.
 */
function latencyExecArgv() {
  return (process.env.BENCH_LATENCY_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
}

/** The latency phase's broker priority (bench/lib/broker-priority.mjs says why); logged either way. */
function raiseBrokerPriority(ctx) {
  const nice = brokerLatencyNice();
  const outcome =
    nice === 0
      ? { nice: null, reason: 'BENCH_BROKER_NICE=0' }
      : ctx.brokerPid
        ? setProcessNice(ctx.brokerPid, nice)
        : { nice: null, reason: 'a broker this run did not start' };
  if (outcome.nice === null) log(`latency: the broker keeps its priority (${outcome.reason})`);
  else log(`latency: the broker's ${outcome.threads} threads at nice ${outcome.nice} for this phase`);
  return outcome;
}

/** One line: each phase's seconds, in the order they began (a data set phase inside the one that needed it). */
function describePhases(phases) {
  return phases.map((p) => `${p.name} ${p.seconds} s`).join(', ');
}

/** One line: the consumer's CPU, allocation and requests per message and per second over the run. */
function describeLoad(l) {
  const f = (v, digits) => (v == null ? '-' : v.toFixed(digits));
  return (
    `cpu ${f(l.cpuUsPerMsg, 1)} µs/msg, allocated ${f(l.allocatedBytesPerMsg / 1024, 1)} KB/msg (${f(l.allocatedMBPerSec, 1)} MB/s), ` +
    `scavenges ${f(l.scavengesPerSec, 2)}/s, fetches ${f(l.fetchesPerSec, 0)}/s, commits ${f(l.commitsPerSec, 2)}/s, heartbeats ${f(l.heartbeatsPerSec, 2)}/s`
  );
}

/** One line: the tail's mean segments and what it overlapped, the commits, GC and the generator. */
function describeBreakdown(b, producer) {
  const t = b.tail;
  const seg = Object.entries(t.segmentsMeanMs)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');
  const over = Object.entries(t.overlapping)
    .map(([k, v]) => `${k} ${v.messages} (${v.meanMs.toFixed(1)} ms)`)
    .join(', ');
  const e = b.events;
  return (
    `tail >= ${t.thresholdMs.toFixed(1)} ms (${t.messages} msgs, mean ${t.e2eMeanMs.toFixed(1)}): ${seg}; overlapping ${over}; ` +
    `commits ${e.commits.count} p50 ${e.commits.ms.p50?.toFixed(1)} max ${e.commits.ms.max?.toFixed(1)} ms; ` +
    `heartbeats ${e.heartbeats.count} max ${e.heartbeats.ms.max?.toFixed(1)}; gc ${e.gc.count} total ${e.gc.totalMs.toFixed(0)} max ${e.gc.ms.max?.toFixed(1)} ms; ` +
    `loop delay p99 ${e.loopDelayMs?.p99?.toFixed(1)}; ` +
    (e.brokerGc
      ? `broker pauses ${e.brokerGc.count}${e.brokerGc.count ? ` total ${e.brokerGc.totalMs.toFixed(0)} max ${e.brokerGc.ms.max.toFixed(1)} ms` : ''}; `
      : '') +
    (producer
      ? `producer: produce p50 ${producer.produceRequestMs.p50} p99 ${producer.produceRequestMs.p99} ms, stamp to write p99 ${producer.stampToWriteMs?.p99} max ${producer.stampToWriteMs?.max} ms, send gap p99 ${producer.gapMs.p99} max ${producer.gapMs.max}, msgs/send max ${producer.messagesPerSend.max}, gc ${producer.gc.count} max ${producer.gc.max} ms`
      : '')
  );
}

async function soakPhase(ctx) {
  const { options, settings, admin } = ctx;
  const system = SYSTEM_BY_ID.get(SOAK_SYSTEM);
  const { topic, data } = await datasetOf(ctx, 'soak', options.soakMessages);
  const groupId = `bench-soak-${system.id}-${ctx.runTag}`;
  const sampleEveryMessages = Math.max(1, Math.round(data.total / 100));
  const gcEveryMessages = options.soakForcedGc ? Math.max(1, Math.round(data.total / 20)) : 0;
  log(
    `soak: ${data.total} messages through ${system.id} ${system.label}, process.memoryUsage() sampled every ` +
      `${sampleEveryMessages} messages` +
      (gcEveryMessages > 0 ? ` and after a forced GC every ${gcEveryMessages} messages` : ', no forced GC'),
  );
  const outcome = await runSystem(
    system,
    baseJob(settings, {
      kind: 'soak',
      topic,
      groupId,
      total: data.total,
      firstOffsets: data.firstOffsets,
      expectedChecksum: datasetChecksum(data.total),
      lastOffsets: data.lastOffsets,
      sampleEveryMessages,
      gcEveryMessages,
      timeoutMs: timeoutFor(data.total),
    }),
    { execArgv: ['--expose-gc'] },
  );
  if (outcome.result) outcome.committedToEnd = await committedToEnd(admin, groupId, topic, data.lastOffsets);
  checkAgainstDataset(outcome);
  await deleteGroup(admin, groupId);
  outcome.timing.mark('checked');
  if (!outcome.result || outcome.error) {
    log(`soak FAILED: ${outcome.error}`);
    return { system: system.id, messages: data.total, error: outcome.error, timing: outcome.timing.toJSON() };
  }
  const verdict = soakVerdict(outcome.result.samples, data.total);
  log(describeRun('soak', system, outcome));
  log(
    `soak RSS ${verdict.rssEarlyMB} MB (20-40%) -> ${verdict.rssLateMB} MB (last 20%), allowed ` +
      `${verdict.allowedGrowthMB} MB; last half ${verdict.rssLastHalfGrowthMB} MB along the fit; heap between GCs ` +
      `${verdict.heapUsedEarlyMB} -> ${verdict.heapUsedLateMB} MB` +
      (verdict.judgedBy === 'after-gc'
        ? `; after a forced GC heap ${verdict.heapAfterGcEarlyMB} -> ${verdict.heapAfterGcLateMB} MB (fit ` +
          `${verdict.heapAfterGcFittedGrowthMB}, allowed ${verdict.heapAfterGcAllowedMB}), external ` +
          `${verdict.externalAfterGcEarlyMB} -> ${verdict.externalAfterGcLateMB} MB (fit ` +
          `${verdict.externalAfterGcFittedGrowthMB}, allowed ${verdict.externalAfterGcAllowedMB})`
        : '; no forced GC: RSS alone decides') +
      `: ${verdict.flat ? 'flat' : `GROWING (${verdict.growing.join(', ') || 'too few samples'})`}`,
  );
  const mb = (b) => round(b / 2 ** 20, 1);
  return {
    system: system.id,
    messages: data.total,
    msgsPerSec: round(outcome.result.msgsPerSec),
    firstToLastMs: round(outcome.result.firstToLastMs),
    peakRssMB: mb(outcome.result.peakRss),
    committedToEnd: outcome.committedToEnd,
    timing: outcome.timing.toJSON(),
    ...verdict,
    series: outcome.result.samples.map((s) => ({
      t: s.t,
      messages: s.messages,
      afterGc: s.afterGc,
      rssMB: mb(s.rss),
      heapTotalMB: mb(s.heapTotal),
      heapUsedMB: mb(s.heapUsed),
      externalMB: mb(s.external),
      arrayBuffersMB: mb(s.arrayBuffers),
    })),
  };
}

async function profilePhase(ctx) {
  const { options, settings, admin } = ctx;
  const { topic, data } = await datasetOf(ctx, 'flights', options.messages);
  mkdirSync(PROFILES_DIR, { recursive: true });
  const profiles = {};
  for (const system of options.profileSystems) {
    const name = `${slug(system)}-${ctx.runTag}.cpuprofile`;
    const groupId = `bench-profile-${slug(system)}-${ctx.runTag}`;
    const outcome = await runSystem(
      system,
      baseJob(settings, {
        kind: 'throughput',
        topic,
        groupId,
        total: data.total,
        firstOffsets: data.firstOffsets,
        expectedChecksum: datasetChecksum(data.total),
        lastOffsets: data.lastOffsets,
        timeoutMs: timeoutFor(data.total) * 2,
      }),
      {
        execArgv: [
          '--cpu-prof',
          '--cpu-prof-dir',
          PROFILES_DIR,
          '--cpu-prof-name',
          name,
          '--cpu-prof-interval',
          '250',
        ],
      },
    );
    await deleteGroup(admin, groupId);
    const file = join(PROFILES_DIR, name);
    if (!outcome.result || !existsSync(file)) {
      log(`profile ${system.id}: FAILED ${outcome.error ?? 'no profile written'}`);
      continue;
    }
    const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), {
      top: 25,
      fromUs: outcome.result.hrFirstUs,
      toUs: outcome.result.hrLastUs,
    });
    log(
      `profile ${system.id} ${system.label} (${Math.round(outcome.result.msgsPerSec)} msg/s under the profiler), ${relative(REPO_ROOT, file)}`,
    );
    console.log(formatSummary(summary, { top: 15 }));
    profiles[system.id] = {
      file: relative(REPO_ROOT, file),
      msgsPerSecProfiled: round(outcome.result.msgsPerSec),
      ...summary,
    };
  }
  return profiles;
}

// ---------------------------------------------------------------------------------------------------------------

function averageValueBytes(count) {
  let bytes = 0;
  const n = Math.min(count, 10_000);
  for (let i = 0; i < n; i++) bytes += flightPosition(i).value.length;
  return Math.round(bytes / n);
}

function writeJson(file, value) {
  mkdirSync(resolve(file, '..'), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

/**
 * A throughput target is met when the subject reaches it both in wall-clock throughput and in CPU per message: on a
 * shared machine the wall-clock ratio alone can pass while the subject spends more CPU per message than the baseline.
 */
function targetsOf(throughput, latency, soak) {
  const targets = {};
  for (const { name, subject, base, target } of RATIOS) {
    const value = throughput?.ratios[name];
    if (target === undefined || value === undefined) continue;
    const cpu = throughput.ratiosByCpu?.[name] ?? null;
    targets[name] = {
      subject,
      base,
      value,
      cpu,
      target,
      met: value >= target && cpu !== null && cpu >= target,
    };
  }
  // The latency phase keys its systems by id (results.latency by key).
  const l = latency?.systems[LATENCY_TARGETS.system];
  if (l && !l.error)
    targets.latency = {
      system: LATENCY_TARGETS.system,
      rate: latency.rate,
      p50Ms: l.p50Ms,
      p99Ms: l.p99Ms,
      targetP50Ms: LATENCY_TARGETS.p50Ms,
      targetP99Ms: LATENCY_TARGETS.p99Ms,
      met: l.p50Ms <= LATENCY_TARGETS.p50Ms && l.p99Ms <= LATENCY_TARGETS.p99Ms,
    };
  if (soak && !soak.error)
    targets.soakFlat = {
      met: soak.flat,
      judgedBy: soak.judgedBy,
      growing: soak.growing,
      heapAfterGcGrowthMB: round(soak.heapAfterGcLateMB - soak.heapAfterGcEarlyMB, 1),
      externalAfterGcGrowthMB: round(soak.externalAfterGcLateMB - soak.externalAfterGcEarlyMB, 1),
      rssGrowthMB: soak.rssGrowthMB,
      rssLastHalfGrowthMB: soak.rssLastHalfGrowthMB,
    };
  return targets;
}

/**
 * The broker this harness starts, for every system alike: G1 with a 128 MB young generation, or generational ZGC on
 * the newest JDK 21+ found with BENCH_BROKER_GC=zgc (bench/lib/broker-jvm.mjs says why). Kafka's own heap (bin/kafka-server-start.sh: 1 GB;
 * the launcher's 256-512 MB suit tests running several brokers), its collections and safepoints logged with the
 * machine's clock for the latency breakdown. KAFKA_HEAP_OPTS or KAFKA_JVM_PERFORMANCE_OPTS, when set, replace the
 * heap or the collector's choices, as in Kafka's scripts; BENCH_BROKER_JAVA_HOME names the broker's Java. Returns
 * the GC log's path and the broker's Java.
 */
function benchBrokerJvm(launcher) {
  const gcLog = join(launcher.nodes[0].dir, 'gc.log');
  const java = brokerJava();
  if (java.javaHome) launcher.javaHome = java.javaHome;
  launcher.brokerJvmOptions = brokerJvmOptions({
    launcherOptions: launcher.brokerJvmOptions,
    major: java.major,
    env: process.env,
    gcLog,
  });
  return { gcLog, java };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.help) {
    console.log(
      readFileSync(new URL(import.meta.url), 'utf8')
        .split('*/')[0]
        .replace(/^#!.*\n\/\*\*\n?/, '')
        .replace(/^ \* ?/gm, '')
        .trimEnd(),
    );
    return 0;
  }
  const library = libraryEntry();
  if (options.systems.some((s) => s.id === 'd') && (!library || !existsSync(library))) {
    throw new UsageError(
      `the compiled library (${library ? relative(REPO_ROOT, library) : 'nest-kafka-groups'}) is missing: run \`npm run build\` first (npm run bench does)`,
    );
  }

  const startedAt = Date.now();
  const timeline = new Timeline(startedAt);
  const machine = machineInfo();
  const launcher = localSettings();
  log(`broker: ${launcher.brokers} (starting one with the local launcher if none answers)`);
  const { gcLog, java: brokerJavaUsed } = benchBrokerJvm(launcher);
  // Compiled (or found in the cache) while the broker starts and the data are produced, so no run pays for javac.
  const javaBuild =
    options.systems.some((s) => s.id === 'j') || options.profileSystems.some((s) => s.id === 'j')
      ? timeline.phase('java compile', () => javaClasspath())
      : undefined;
  // Awaited after the broker and the data sets; a failure meanwhile is not unhandled.
  javaBuild?.catch(() => undefined);
  const broker = await timeline.phase('broker', () => ensureBroker(launcher));
  const ctx = {
    timeline,
    brokerGcLog: broker.started ? gcLog : process.env.BENCH_BROKER_GC_LOG?.trim() || undefined,
    options,
    settings: { brokerList: broker.brokers.split(',').map((b) => b.trim()) },
    runTag: `${Date.now().toString(36)}`,
    /** Topic name -> the promise of its data set (datasetOf). */
    datasets: new Map(),
    brokerStarted: broker.started,
    brokerPid: broker.started ? broker.pid : undefined,
    brokerJavaHome: brokerJavaUsed.javaHome,
  };
  const cleanup = async () => {
    if (activeChild?.pid) activeChild.kill('SIGKILL');
    if (broker.started) {
      log(`stopping the broker this run started (pid ${broker.pid})`);
      await stopBroker({}, launcher);
    }
  };
  const onSignal = (signal) => {
    log(`${signal}: stopping`);
    cleanup().finally(() => {
      // The phase under way went on while the broker stopped and may have forked its next child meanwhile.
      if (activeChild?.pid) activeChild.kill('SIGKILL');
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const kafka = kafkaFor(ctx.settings.brokerList, 'bench-orchestrator');
  const admin = kafka.admin({ retry: CLIENT_RETRY });
  ctx.kafka = kafka;
  ctx.admin = admin;
  ctx.valueBytes = averageValueBytes(options.messages);

  const results = {
    generatedAt: new Date().toISOString(),
    mode: options.mode,
    machine,
    versions: versions(),
    broker: {
      brokers: broker.brokers,
      startedByBench: broker.started,
      kafka: broker.started ? launcherKafkaVersion() : null,
      java: broker.started ? (brokerJavaUsed.version ?? null) : null,
      jvmOptions: broker.started ? launcher.brokerJvmOptions : null,
    },
    settings: {
      messages: options.messages,
      validatedMessages: options.validatedMessages,
      rounds: options.rounds,
      partitions: PARTITIONS,
      valueBytesAverage: ctx.valueBytes,
      keys: 'aircraft (5,000 ICAO addresses), kafkajs DefaultPartitioner',
      partitionsConsumedConcurrently: PARTITIONS_CONSUMED_CONCURRENTLY,
      consumer: CONSUMER_TUNING,
      clientRetry: CLIENT_RETRY,
      handler:
        'parse JSON (by the framework in c and d), read one field, count; no validation pipe in c or d',
      library: 'defaults: retry 3 attempts, dead letters on (<topic>-dlt exists), commit after success',
      soakMessages: options.phases.has('soak') ? options.soakMessages : undefined,
      libraryBuild: library && relative(REPO_ROOT, library),
    },
  };
  try {
    await admin.connect();
    await timeline.phase('coordinators warm-up', () => warmUpCoordinators(ctx.settings.brokerList));
    await timeline.phase('data sets', () => prepareDatasets(ctx));
    let throughput;
    let latency;
    let soak;
    if (javaBuild) {
      Object.assign(childEnv, javaClasspathEnv(await javaBuild));
      log('system j: Java consumer compiled');
    }
    if (options.phases.has('throughput')) {
      throughput = await timeline.phase('throughput', () => throughputPhase(ctx));
      results.systems = Object.fromEntries(
        Object.entries(throughput.systems).map(([id, s]) => [SYSTEM_BY_ID.get(id).key, s]),
      );
      results.ratios = throughput.ratios;
      results.ratiosMedianPerRound = throughput.ratiosMedianPerRound;
      results.ratiosByCpu = throughput.ratiosByCpu;
      results.runs = throughput.runs;
    }
    if (options.phases.has('latency')) {
      latency = await timeline.phase('latency', () => latencyPhase(ctx));
      results.latency = {
        ...latency,
        systems: Object.fromEntries(
          Object.entries(latency.systems).map(([id, s]) => [SYSTEM_BY_ID.get(id).key, s]),
        ),
      };
    }
    if (options.phases.has('soak')) {
      soak = await timeline.phase('soak', () => soakPhase(ctx));
      results.soak = soak;
    }
    if (options.phases.has('profile'))
      results.profile = await timeline.phase('profile', () => profilePhase(ctx));
    results.targets = targetsOf(throughput, latency, soak);
    results.machine.loadAverageAtEnd = os.loadavg().map(round2);
    results.durationSeconds = Math.round((Date.now() - startedAt) / 1000);
    results.phases = timeline.toJSON();
    if (results.runs) results.throughputTimingBySystem = timingBySystem(results.runs);
    log(`phases: ${describePhases(results.phases)}`);

    writeJson(options.out, results);
    log(`wrote ${relative(REPO_ROOT, options.out)} (${results.durationSeconds} s)`);
    for (const { name, subject, base } of RATIOS) {
      if (results.ratios?.[name] === undefined) continue;
      log(
        `${`${subject}/${base}`.padEnd(8)} ${name.padEnd(34)} wall clock ${results.ratios[name]}  median of rounds ` +
          `${results.ratiosMedianPerRound[name]}  CPU per message ${results.ratiosByCpu[name]}`,
      );
    }
    const allSystems = options.systems.length === SYSTEMS.length && options.phases.has('throughput');
    const defaultOut = options.out === join(RESULTS_DIR, 'latest.json');
    if (options.docs ?? (options.mode === 'full' && allSystems && defaultOut)) {
      const doc = await writeBenchmarksDoc(results);
      log(`updated ${relative(REPO_ROOT, doc)}`);
    }
    const failures = [
      ...(results.runs ?? [])
        .filter((r) => r.error || !r.committedToEnd)
        .map((r) => `round ${r.round} ${r.system}`),
      ...Object.entries(results.latency?.systems ?? {})
        .filter(([, l]) => l.error)
        .map(([name]) => `latency ${name}`),
      ...(results.soak && (results.soak.error || !results.soak.committedToEnd) ? ['soak'] : []),
    ];
    if (failures.length > 0) log(`FAILED: ${failures.join(', ')} (see above)`);
    return failures.length > 0 ? 1 : 0;
  } finally {
    if (options.dropData && !broker.started) {
      // A broker this run started goes away with its data anyway; on a reused one the data sets are kept unless asked.
      for (const topic of ctx.datasets.keys()) {
        await deleteTopic(admin, topic).catch(() => undefined);
        await deleteTopic(admin, `${topic}-dlt`).catch(() => undefined);
      }
      log(`deleted the data sets ${[...ctx.datasets.keys()].join(', ')}`);
    }
    await admin.disconnect().catch(() => undefined);
    await cleanup();
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(
    `[bench] error: ${error instanceof UsageError || error?.name === 'KafkaLocalError' ? error.message : error.stack}`,
  );
  process.exitCode = error instanceof UsageError ? 2 : 1;
  if (activeChild?.pid) activeChild.kill('SIGKILL');
}
