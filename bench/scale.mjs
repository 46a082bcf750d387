#!/usr/bin/env node
/**
 * Scale of one consumer group of this project against a real broker (issue 12, goal 6): how long a rebalance takes
 * as members join one group, and as the group's topics grow. Not part of CI; figures go to docs/SCALING.md.
 *
 *   npm run bench:scale                 members 1 -> 8 (and back) over 2 processes on 24 partitions; 1 -> 50 topics
 *   node bench/scale.mjs --help
 *
 * Options:
 *   --members N              most members in the group (default 8), alternating between the 2 processes
 *   --partitions N           partitions of the members experiment's topic (default 24)
 *   --topics 1,5,10,25,50    topic counts of the topics experiment (each a fresh group)
 *   --topic-partitions N     partitions of each topic in the topics experiment (default 6)
 *   --rate N                 messages per second produced while members join (default 500)
 *   --experiments members,topics
 *   --out FILE               results (default bench/results/scale.json)
 *
 * Every member is one Nest application (KafkaModule.forRoot + forFeature with the group), the library's defaults
 * except the topics, which this script creates beforehand (with their dead-letter topics). A step starts when the
 * orchestrator asks a process for one more member (or closes one) and ends when the broker reports the group
 * Stable with every member and every partition assigned. Meanwhile messages flow at a steady rate, stamped with
 * their send time: the worst produce-to-handler latency in a step is how long the group stood still. At the end every
 * produced message must have been handled (lost: 0, or the script fails); repeats are counted.
 *
 * Broker: KAFKA_BROKERS, or one started with the local launcher and stopped at the end, as for bench/run.mjs.
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBroker, localSettings, stopBroker } from '../scripts/kafka-local-lib.mjs';
import { wallClockMs } from './lib/child.mjs';
import kafkajs from 'kafkajs';
import { deleteTopic, kafkaFor, newProducer } from './lib/dataset.mjs';
import { DeliveryTally } from './lib/delivery-tally.mjs';
import { launcherKafkaVersion, machineInfo, versions } from './lib/environment.mjs';
import { waitForStableGroup } from './lib/groups.mjs';
import { BENCH_DIR, CLIENT_RETRY, REPO_ROOT, RESULTS_DIR } from './lib/settings.mjs';
import { round } from './lib/stats.mjs';

const startedAt = Date.now();
const log = (message) =>
  console.log(`[scale +${String(Math.round((Date.now() - startedAt) / 1000)).padStart(3)}s] ${message}`);

class UsageError extends Error {}

function parseArgs(argv) {
  const options = {
    members: 8,
    partitions: 24,
    topics: [1, 5, 10, 25, 50],
    topicPartitions: 6,
    rate: 500,
    experiments: ['members', 'topics'],
    out: join(RESULTS_DIR, 'scale.json'),
  };
  const args = [...argv];
  const take = (name) => {
    const value = args.shift();
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
    return value;
  };
  const int = (name, value = take(name)) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} needs positive integers, got ${value}`);
    return n;
  };
  while (args.length) {
    const arg = args.shift();
    if (arg === '--members') options.members = int(arg);
    else if (arg === '--partitions') options.partitions = int(arg);
    else if (arg === '--topics')
      options.topics = take(arg)
        .split(',')
        .map((v) => int(arg, v));
    else if (arg === '--topic-partitions') options.topicPartitions = int(arg);
    else if (arg === '--rate') options.rate = int(arg);
    else if (arg === '--experiments') {
      options.experiments = take(arg).split(',');
      const bad = options.experiments.filter((e) => e !== 'members' && e !== 'topics');
      if (bad.length) throw new UsageError(`--experiments: unknown ${bad.join(', ')} (members, topics)`);
    } else if (arg === '--out') options.out = resolve(take(arg));
    else if (arg === '--help' || arg === '-h') options.help = true;
    else throw new UsageError(`unknown option ${arg}`);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------------------------
// The two member processes

class MemberHost {
  constructor(name) {
    this.name = name;
    this.waiting = [];
    this.child = fork(join(BENCH_DIR, 'scale', 'member-host.mjs'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
    });
    this.child.on('message', (message) => {
      const index = this.waiting.findIndex((w) => w.type === message.type || message.type === 'error');
      if (index >= 0) {
        const [w] = this.waiting.splice(index, 1);
        if (message.type === 'error') w.reject(new Error(`${name} (${message.command}): ${message.error}`));
        else w.resolve(message);
      }
    });
    this.child.on('exit', (code, signal) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`${name} exited (${code ?? signal})`));
    });
    this.up = this.expect('up');
  }

  expect(type) {
    return new Promise((resolvePromise, reject) =>
      this.waiting.push({ type, resolve: resolvePromise, reject }),
    );
  }

  request(command, reply) {
    const answer = this.expect(reply);
    this.child.send(command);
    return answer;
  }

  kill() {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Steady traffic with send times and sequence numbers

let trafficRuns = 0;

/** Messages at a steady rate over `topics`, each with its run, seq and send time; `counts` tallies what was handled. */
class Traffic {
  constructor(brokers, topics, rate) {
    // Its retries (a partition not led yet right after creation) would log ERROR lines; a failure still surfaces in stop().
    const kafka = new kafkajs.Kafka({
      clientId: 'bench-scale-traffic',
      brokers,
      logLevel: kafkajs.logLevel.NOTHING,
      retry: CLIENT_RETRY,
    });
    this.producer = newProducer(kafka);
    this.topics = topics;
    this.rate = rate;
    this.run = ++trafficRuns;
    this.sent = 0;
    this.deliveries = new DeliveryTally();
    this.failure = undefined;
  }

  handled(seq, offset) {
    this.deliveries.handled(seq, offset);
  }

  /** DeliveryTally.tally over what was sent. */
  tally() {
    return this.deliveries.tally(this.sent);
  }

  async start() {
    await this.producer.connect();
    this.running = true;
    this.loop = this.produce();
  }

  async produce() {
    const started = performance.now();
    const inFlight = new Set();
    const pad = 'x'.repeat(200);
    while (this.running) {
      const due = Math.floor(((performance.now() - started) / 1000) * this.rate);
      if (due > this.sent) {
        const sentAt = wallClockMs();
        const byTopic = new Map();
        for (; this.sent < due; this.sent++) {
          const topic = this.topics[this.sent % this.topics.length];
          if (!byTopic.has(topic)) byTopic.set(topic, []);
          byTopic.get(topic).push({
            key: `k${this.sent % 997}`,
            value: JSON.stringify({ run: this.run, seq: this.sent, sentAt, pad }),
          });
        }
        const send = this.producer
          .sendBatch({
            acks: 1,
            topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
          })
          .catch((error) => (this.failure = error))
          .finally(() => inFlight.delete(send));
        inFlight.add(send);
      }
      await sleep(5);
    }
    await Promise.all(inFlight);
  }

  async stop() {
    this.running = false;
    await this.loop;
    await this.producer.disconnect();
    if (this.failure) throw this.failure;
    return this.sent;
  }
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Creates the topics, then waits until every partition has a leader. kafkajs's own waitForLeaders gives up when
 * the metadata it asks for right after the creation does not know the topic yet (a loaded broker).
 */
async function createTopics(admin, specs) {
  await admin.createTopics({
    waitForLeaders: false,
    topics: specs.map((t) => ({ replicationFactor: 1, ...t })),
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: specs.map((t) => t.topic) });
      const byName = new Map(topics.map((t) => [t.name, t]));
      const ready = specs.every(
        (spec) =>
          byName.get(spec.topic)?.partitions.length === spec.numPartitions &&
          byName.get(spec.topic).partitions.every((p) => p.leader >= 0),
      );
      if (ready) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline)
      throw new Error(`topics ${specs.map((t) => t.topic).join(', ')} have no leaders after 120 s`);
    await sleep(200);
  }
}

/** Latency of the messages handled since the last call, over both processes; their seqs go to ctx.traffic. */
async function windows(ctx) {
  const stats = await Promise.all(ctx.hosts.map((h) => h.request({ type: 'window' }, 'window')));
  for (const s of stats) {
    for (let i = 0; i < s.seqs.length; i++)
      if (s.runs[i] === ctx.traffic?.run) ctx.traffic.handled(s.seqs[i], s.offsets[i]);
  }
  const max = (key) => {
    const values = stats.map((s) => s[key]).filter((v) => v !== null);
    return values.length ? Math.max(...values) : null;
  };
  return {
    received: stats.reduce((n, s) => n + s.received, 0),
    maxLatencyMs: max('maxLatencyMs'),
    p99LatencyMs: max('p99LatencyMs'),
  };
}

async function settle() {
  // Messages fetched just before the group became Stable are handled within this; their latency belongs to the step.
  await sleep(1_500);
}

/**
 * One member more (the host adds an application), timed: `bootMs` until the new application started its consumer, `stableMs`
 * from the request until the broker reports the group Stable with `members` members and all partitions assigned,
 * `rebalanceMs` = stableMs - bootMs (the join and every member's rejoin).
 */
async function joinStep(ctx, host, { id, groupId, topics, members, partitions }) {
  await windows(ctx);
  const t0 = performance.now();
  const added = await host.request({ type: 'add', id, groupId, topics, brokers: ctx.brokers }, 'added');
  const stableAt = await waitForStableGroup(ctx.admin, groupId, {
    members,
    partitions,
    pollMs: 25,
    timeoutMs: 120_000,
  });
  await settle();
  const window = await windows(ctx);
  return {
    members,
    process: host.name,
    bootMs: round(added.bootMs),
    stableMs: round(stableAt - t0),
    rebalanceMs: round(Math.max(0, stableAt - t0 - added.bootMs)),
    maxLatencyMs: round(window.maxLatencyMs),
    p99LatencyMs: round(window.p99LatencyMs),
    loadAverage: round(os.loadavg()[0], 2),
  };
}

/** One member fewer: its application closed (commit, leave the group), then the group Stable without it. */
async function leave(ctx, host, { id, groupId, members, partitions }) {
  await windows(ctx);
  const t0 = performance.now();
  const closed = await host.request({ type: 'close', ids: [id] }, 'closed');
  const stableAt = await waitForStableGroup(ctx.admin, groupId, {
    members,
    partitions,
    pollMs: 25,
    timeoutMs: 120_000,
  });
  await settle();
  const window = await windows(ctx);
  return {
    members,
    process: host.name,
    closeMs: round(closed.ms),
    stableMs: round(stableAt - t0),
    maxLatencyMs: round(window.maxLatencyMs),
    p99LatencyMs: round(window.p99LatencyMs),
    loadAverage: round(os.loadavg()[0], 2),
  };
}

/** Starts steady traffic over `topics`; what the hosts handle from now on is tallied against it. */
async function startTraffic(ctx, topics) {
  await windows(ctx);
  ctx.traffic = new Traffic(ctx.brokers, topics, ctx.options.rate);
  await ctx.traffic.start();
}

/** Stops the traffic and waits until every message was handled (or 30 s): Traffic.tally(). */
async function drain(ctx) {
  await ctx.traffic.stop();
  const deadline = Date.now() + 30_000;
  let tally = ctx.traffic.tally();
  while (tally.lost > 0 && Date.now() < deadline) {
    await sleep(250);
    await windows(ctx);
    tally = ctx.traffic.tally();
  }
  // Repeats of messages handled just before a rebalance arrive with the new assignment: one more look.
  await sleep(1_000);
  await windows(ctx);
  ctx.traffic = undefined;
  return tally;
}

function describeTally(t) {
  return `${t.produced} produced, ${t.lost} lost, ${t.redelivered} redelivered, ${t.writtenTwice} written twice by the producer's retries`;
}

function describeStep(prefix, step) {
  return (
    `${prefix} ${String(step.members).padStart(2)} member(s) on ${step.process}: ` +
    (step.bootMs !== undefined
      ? `boot ${step.bootMs} ms, rebalance ${step.rebalanceMs} ms, `
      : `close ${step.closeMs} ms, `) +
    `Stable after ${step.stableMs} ms, worst latency ${step.maxLatencyMs ?? '-'} ms (p99 ${step.p99LatencyMs ?? '-'}), ` +
    `load ${step.loadAverage}`
  );
}

async function membersExperiment(ctx) {
  const { options, admin } = ctx;
  const topic = `scale-members-${ctx.tag}`;
  const groupId = `scale-members-${ctx.tag}`;
  ctx.topics.push(topic, `${topic}-dlt`);
  await createTopics(admin, [
    { topic, numPartitions: options.partitions },
    { topic: `${topic}-dlt`, numPartitions: 1 },
  ]);
  log(
    `members: 1 -> ${options.members} -> 1 in group ${groupId} on ${options.partitions} partitions, ${options.rate} msg/s`,
  );
  const joins = [];
  const leaves = [];
  const hostOf = (n) => ctx.hosts[(n - 1) % ctx.hosts.length];
  const join1 = await joinStep(ctx, hostOf(1), {
    id: 'm1',
    groupId,
    topics: [topic],
    members: 1,
    partitions: options.partitions,
  });
  joins.push(join1);
  log(describeStep('join', join1));
  await startTraffic(ctx, [topic]);
  for (let n = 2; n <= options.members; n++) {
    const step = await joinStep(ctx, hostOf(n), {
      id: `m${n}`,
      groupId,
      topics: [topic],
      members: n,
      partitions: options.partitions,
    });
    joins.push(step);
    log(describeStep('join', step));
  }
  for (let n = options.members; n >= 2; n--) {
    const step = await leave(ctx, hostOf(n), {
      id: `m${n}`,
      groupId,
      members: n - 1,
      partitions: options.partitions,
    });
    leaves.push(step);
    log(describeStep('leave', step));
  }
  const tally = await drain(ctx);
  await hostOf(1).request({ type: 'close', ids: ['m1'] }, 'closed');
  await admin.deleteGroups([groupId]).catch(() => undefined);
  log(`members: ${describeTally(tally)}`);
  return { topic, partitions: options.partitions, rate: options.rate, joins, leaves, ...tally };
}

async function topicsExperiment(ctx) {
  const { options, admin } = ctx;
  const steps = [];
  for (const count of options.topics) {
    const topics = Array.from({ length: count }, (_, i) => `scale-topics-${ctx.tag}-${count}-${i}`);
    const groupId = `scale-topics-${count}-${ctx.tag}`;
    const partitions = count * options.topicPartitions;
    const created = performance.now();
    await createTopics(
      admin,
      topics.flatMap((topic) => [
        { topic, numPartitions: options.topicPartitions },
        { topic: `${topic}-dlt`, numPartitions: 1 },
      ]),
    );
    ctx.topics.push(...topics.flatMap((t) => [t, `${t}-dlt`]));
    log(
      `topics: ${count} topic(s) x ${options.topicPartitions} partitions (${partitions}) created in ` +
        `${Math.round(performance.now() - created)} ms, group ${groupId}`,
    );
    // Traffic first: the producer's first sends to new partitions may need retries, which must not fall in a step.
    await startTraffic(ctx, topics);
    await sleep(2_000);
    const first = await joinStep(ctx, ctx.hosts[0], {
      id: `t${count}-1`,
      groupId,
      topics,
      members: 1,
      partitions,
    });
    log(describeStep(`${count} topic(s): join`, first));
    const second = await joinStep(ctx, ctx.hosts[1], {
      id: `t${count}-2`,
      groupId,
      topics,
      members: 2,
      partitions,
    });
    log(describeStep(`${count} topic(s): join`, second));
    const third = await joinStep(ctx, ctx.hosts[0], {
      id: `t${count}-3`,
      groupId,
      topics,
      members: 3,
      partitions,
    });
    log(describeStep(`${count} topic(s): join`, third));
    const tally = await drain(ctx);
    await Promise.all([
      ctx.hosts[0].request({ type: 'close', ids: [`t${count}-1`, `t${count}-3`] }, 'closed'),
      ctx.hosts[1].request({ type: 'close', ids: [`t${count}-2`] }, 'closed'),
    ]);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    for (const topic of topics) {
      await deleteTopic(admin, topic).catch(() => undefined);
      await deleteTopic(admin, `${topic}-dlt`).catch(() => undefined);
    }
    steps.push({ topics: count, partitions, first, second, third, ...tally });
    log(`${count} topic(s): ${describeTally(tally)}`);
  }
  return { topicPartitions: options.topicPartitions, rate: options.rate, steps };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.help) {
    console.log(
      (await import('node:fs'))
        .readFileSync(new URL(import.meta.url), 'utf8')
        .split('*/')[0]
        .replace(/^#!.*\n\/\*\*\n?/, '')
        .replace(/^ \* ?/gm, '')
        .trimEnd(),
    );
    return 0;
  }
  const launcher = localSettings();
  log(`broker: ${launcher.brokers} (starting one with the local launcher if none answers)`);
  const broker = await ensureBroker(launcher);
  const brokers = broker.brokers.split(',').map((b) => b.trim());
  const kafka = kafkaFor(brokers, 'bench-scale');
  const admin = kafka.admin({ retry: CLIENT_RETRY });
  const ctx = {
    options,
    brokers,
    kafka,
    admin,
    tag: Date.now().toString(36),
    topics: [],
  };
  const results = {
    generatedAt: new Date().toISOString(),
    machine: machineInfo(),
    versions: versions(),
    broker: {
      brokers: broker.brokers,
      startedByBench: broker.started,
      kafka: broker.started ? launcherKafkaVersion() : null,
    },
    settings: {
      ...options,
      out: relative(REPO_ROOT, options.out),
      processes: 2,
      consumer: 'library defaults',
    },
  };
  let failed = false;
  try {
    await admin.connect();
    ctx.hosts = [new MemberHost('process 1'), new MemberHost('process 2')];
    await Promise.all(ctx.hosts.map((h) => h.up));
    if (options.experiments.includes('members')) results.members = await membersExperiment(ctx);
    if (options.experiments.includes('topics')) results.topics = await topicsExperiment(ctx);
    for (const [name, r] of [
      ['members', results.members],
      ...(results.topics?.steps ?? []).map((s) => [`${s.topics} topic(s)`, s]),
    ]) {
      if (r && (r.lost > 0 || r.produced === 0)) {
        log(`FAILED: ${name}: ${r.lost} of ${r.produced} message(s) produced but never handled`);
        failed = true;
      }
    }
    results.machine.loadAverageAtEnd = os.loadavg().map((l) => round(l, 2));
    results.durationSeconds = Math.round((Date.now() - startedAt) / 1000);
    mkdirSync(resolve(options.out, '..'), { recursive: true });
    writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote ${relative(REPO_ROOT, options.out)} (${results.durationSeconds} s)`);
  } finally {
    for (const host of ctx.hosts ?? []) {
      await host.request({ type: 'close' }, 'closed').catch(() => undefined);
      host.kill();
    }
    for (const topic of ctx.topics) await deleteTopic(admin, topic).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    if (broker.started) {
      log(`stopping the broker this run started (pid ${broker.pid})`);
      await stopBroker({}, launcher);
    }
  }
  return failed ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(
    `[scale] error: ${error instanceof UsageError || error?.name === 'KafkaLocalError' ? error.message : error.stack}`,
  );
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
