#!/usr/bin/env node
/**
 * A long run of one library consumer (not part of `npm run bench`): does anything grow per message, batch, commit,
 * rebalance or metadata refresh? See docs/BENCHMARKS.md, "Soak: memory over a long run".
 *
 *   node bench/soak-long.mjs [--seconds 600] [--rate 2000] [--snapshots 150,540] [--visitor-every 45] [--out DIR]
 *
 * A producer writes `rate` messages per second to a fresh 6-partition topic for `seconds`. The measured member (its
 * own process, under --expose-gc) handles them through `@KafkaHandler` with retries (1 message in 2,000 fails once),
 * dead letters (1 in 20,000 fails every attempt), `KafkaMetricsModule` scraped every 5 s, `KafkaTracingModule` with
 * a recording tracer provider, metadata refreshed every 2 s. Every `visitor-every` seconds (0: never) a second member
 * joins the group for 12 s: two rebalances. Every 20 s the member reports `process.memoryUsage()` after two forced
 * full GCs; at each of the `snapshots` seconds it writes a heap snapshot after them (the process stops for as long as
 * that takes). At the end the two snapshots are compared by constructor. Written to DIR (default: a new directory
 * under the system's temporary directory): samples.json, comparison.json, the snapshots. Compare snapshots taken
 * while the member keeps up (its after-GC samples show it: heap back to its level, handled close to produced): one
 * taken while it lags holds the fetched batches waiting in flight (Buffers, message objects, strings).
 *
 * Uses the broker at KAFKA_BROKERS (default 127.0.0.1:9092) and the built library (`npm run build`).
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { createTopic, kafkaFor, newProducer } from './lib/dataset.mjs';
import { compareSummaries, summarizeSnapshot } from './lib/heap-snapshot.mjs';
import { brokersFrom } from './lib/settings.mjs';

const SELF = fileURLToPath(import.meta.url);
const VISIT_MS = 12_000;
const SAMPLE_EVERY_MS = 20_000;
const MB = 2 ** 20;

if (process.argv[2] === 'member') await member(JSON.parse(process.argv[3]));
else await main(parseArgs(process.argv.slice(2)));

function parseArgs(argv) {
  const options = { seconds: 600, rate: 2_000, snapshots: [150, 540], visitorEvery: 45, out: undefined };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${name} needs a value`);
    if (name === '--seconds') options.seconds = Number(value);
    else if (name === '--rate') options.rate = Number(value);
    else if (name === '--snapshots') options.snapshots = value.split(',').map(Number);
    else if (name === '--visitor-every') options.visitorEvery = Number(value);
    else if (name === '--out') options.out = resolve(value);
    else throw new Error(`unknown option ${name}`);
  }
  const { seconds, rate, snapshots, visitorEvery } = options;
  if (![seconds, rate, visitorEvery, ...snapshots].every((n) => Number.isFinite(n) && n >= 0))
    throw new Error('--seconds, --rate, --visitor-every and --snapshots take non-negative numbers');
  if (snapshots.length !== 2 || snapshots[0] >= snapshots[1] || snapshots[1] >= seconds)
    throw new Error('--snapshots takes two times in seconds, in order, both within --seconds');
  return options;
}

async function main({ seconds, rate, snapshots, visitorEvery, out }) {
  const started = Date.now();
  const log = (message) =>
    console.log(`[soak-long +${Math.round((Date.now() - started) / 1000)}s] ${message}`);
  const dir = out ?? mkdtempSync(join(os.tmpdir(), 'soak-long-'));
  mkdirSync(dir, { recursive: true });
  const tag = Date.now().toString(36);
  const job = { brokers: brokersFrom(), topic: `soak-long-${tag}`, groupId: `soak-long-${tag}` };
  const kafka = kafkaFor(job.brokers, 'soak-long');
  const admin = kafka.admin();
  await admin.connect();
  await createTopic(admin, job.topic);
  await createTopic(admin, `${job.topic}-dlt`, 1);
  const producer = newProducer(kafka);
  await producer.connect();

  const env = { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' };
  const measured = fork(SELF, ['member', JSON.stringify({ ...job, role: 'measured' })], {
    execArgv: ['--expose-gc'],
    env,
  });
  const samples = [];
  const snapshotFiles = [];
  measured.on('message', (message) => {
    if (message.type === 'sample') {
      samples.push({ t: Math.round((Date.now() - started) / 1000), ...message.sample });
      log(`after GC: ${describe(message.sample)}`);
    } else if (message.type === 'snapshot') {
      snapshotFiles.push(message.file);
      log(`heap snapshot ${message.file}`);
    }
  });
  await new Promise((resolveReady) => measured.once('message', resolveReady));
  log(`member ready; producing ${rate} msg/s to ${job.topic} for ${seconds} s`);

  let produced = 0;
  const perTick = Math.max(1, Math.round(rate / 20));
  const production = setInterval(() => {
    const messages = [];
    for (let i = 0; i < perTick; i++, produced++)
      messages.push({
        key: `a${produced % 5_000}`,
        value: JSON.stringify({ seq: produced, alt: produced % 40_000 }),
      });
    producer.send({ topic: job.topic, messages }).catch((error) => log(`send failed: ${error.message}`));
  }, 50);
  const visitors = new Set();
  const visits =
    visitorEvery > 0 &&
    setInterval(() => {
      const visitor = fork(SELF, ['member', JSON.stringify({ ...job, role: 'visitor' })], { env });
      visitors.add(visitor);
      visitor.on('exit', () => visitors.delete(visitor));
    }, visitorEvery * 1000);
  const sampling = setInterval(() => measured.send({ type: 'sample' }), SAMPLE_EVERY_MS);
  const shots = snapshots.map((at, i) =>
    setTimeout(
      () => measured.send({ type: 'snapshot', file: join(dir, `s${i + 1}.heapsnapshot`) }),
      at * 1000,
    ),
  );

  await new Promise((resolveRun) => setTimeout(resolveRun, seconds * 1000));
  clearInterval(production);
  clearInterval(visits);
  clearInterval(sampling);
  shots.forEach(clearTimeout);
  for (const visitor of visitors) visitor.kill('SIGTERM');
  measured.send({ type: 'stop' });
  await new Promise((resolveExit) => measured.once('exit', resolveExit));
  await producer.disconnect();
  await admin.deleteTopics({ topics: [job.topic, `${job.topic}-dlt`] }).catch(() => undefined);
  await admin.disconnect();

  writeFileSync(join(dir, 'samples.json'), JSON.stringify({ produced, samples }, null, 1));
  log(`produced ${produced}; samples in ${join(dir, 'samples.json')}`);
  if (snapshotFiles.length === 2) {
    const rows = compareSummaries(summarizeSnapshot(snapshotFiles[0]), summarizeSnapshot(snapshotFiles[1]));
    writeFileSync(join(dir, 'comparison.json'), JSON.stringify(rows, null, 1));
    log('most added between the snapshots (count, size in bytes):');
    for (const row of rows.slice(0, 15))
      log(
        `  ${row.countDelta >= 0 ? '+' : ''}${row.countDelta} (${row.countBefore} -> ${row.countAfter}), ${row.sizeDelta} B  ${row.kind}`,
      );
  }
}

function describe(sample) {
  const mb = (key) => `${(sample[key] / MB).toFixed(1)} MB`;
  return `${sample.handled} handled, heap ${mb('heapUsed')}, external ${mb('external')}, rss ${mb('rss')}`;
}

/** One member of the group in a Nest app, as a user would wire it; the measured one answers the orchestrator. */
async function member(job) {
  const { Controller, Module } = await import('@nestjs/common');
  const { NestFactory } = await import('@nestjs/core');
  const { Payload } = await import('@nestjs/microservices');
  const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');
  const { decorateClass, decorateMethod } = await import('./lib/nest.mjs');
  const { KafkaGroupsServer, KafkaHandler, KafkaModule } = await import('nest-kafka-groups');
  const { KafkaMetricsModule, KafkaMetricsService } = await import('nest-kafka-groups/metrics');
  const { KafkaTracingModule } = await import('nest-kafka-groups/tracing');

  let handled = 0;
  let retried = -1;
  class FlightsController {
    onFlight(flight) {
      handled++;
      if (flight.seq % 20_000 === 7) throw new Error(`seq ${flight.seq} fails every attempt`);
      if (flight.seq % 2_000 === 3 && retried !== flight.seq) {
        retried = flight.seq;
        throw new Error(`seq ${flight.seq} fails once`);
      }
    }
  }
  decorateMethod(FlightsController, 'onFlight', [KafkaHandler('${TOPIC}')], [[0, Payload()]]);
  decorateClass(FlightsController, [Controller()]);
  class FlightsModule {}
  decorateClass(FlightsModule, [
    Module({
      imports: [KafkaModule.forFeature({ groupId: job.groupId, topicVariables: { TOPIC: job.topic } })],
      controllers: [FlightsController],
    }),
  ]);
  class SoakModule {}
  decorateClass(SoakModule, [
    Module({
      imports: [
        KafkaModule.forRoot({
          brokers: job.brokers,
          clientId: `soak-long-${job.role}`,
          fromBeginning: true,
          consumer: { metadataMaxAge: 2_000, heartbeatInterval: 1_000 },
          retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 500 },
          shutdownTimeoutMs: 10_000,
        }),
        KafkaMetricsModule.forRoot(),
        KafkaTracingModule.forRoot({ tracerProvider: new BasicTracerProvider() }),
        FlightsModule,
      ],
    }),
  ]);
  // Failed attempts and dead letters log a WARN line each: only errors here.
  const app = await NestFactory.create(SoakModule, { logger: ['error'] });
  app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
  await app.init();
  await app.startAllMicroservices();
  const metrics = app.get(KafkaMetricsService);
  const scraping = setInterval(() => void metrics.metrics().catch(() => undefined), 5_000);
  const stop = async () => {
    clearInterval(scraping);
    await app.close();
    process.exit(0);
  };
  if (job.role === 'visitor') {
    setTimeout(stop, VISIT_MS);
    return;
  }
  // Two collections: V8's count of external memory only drops at the collection after its buffers were freed.
  const settled = () => {
    globalThis.gc();
    globalThis.gc();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    return { handled, rss, heapUsed, external, arrayBuffers };
  };
  process.on('message', (message) => {
    if (message.type === 'sample') process.send({ type: 'sample', sample: settled() });
    else if (message.type === 'snapshot') {
      settled();
      process.send({ type: 'snapshot', file: writeHeapSnapshot(message.file) });
    } else if (message.type === 'stop') void stop();
  });
  process.send({ type: 'ready' });
}
