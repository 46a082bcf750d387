#!/usr/bin/env node
/**
 * `npm run demo`: the flight-tracking service end to end with one command.
 *
 *  1. a Kafka broker: reuses one that answers at KAFKA_BROKERS (default 127.0.0.1:9092), else starts one with the
 *     local launcher (scripts/kafka-local-lib.mjs; needs Java 17+, or run `docker compose up -d` first);
 *  2. builds the library package and the service when dist/ is missing or older than their sources (DEMO_BUILD=never
 *     skips, =always forces);
 *  3. starts the service (node dist/main.js) with the simulated flight feed on; its logs go to a file;
 *  4. every DEMO_INTERVAL_MS (3000) prints a short table per consumer group from GET /kafka/groups;
 *  5. on Ctrl-C (SIGINT) or SIGTERM prints a last table, stops the service and the broker if it started them,
 *     and exits 0. A second Ctrl-C stops at once.
 *
 * Every variable of the service (.env.example) passes through: PORT (3000), FEED_RATE_PER_SEC, FEED_AIRCRAFT,
 * KAFKA_TOPIC_PARTITIONS, KAFKA_GROUP_CONCURRENCY, ...
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KafkaLocalError, ensureBroker, localSettings, stopBroker } from './kafka-local-lib.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'dist', 'main.js');
const NEST_CLI = join(ROOT, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const LIBRARY = join(ROOT, 'packages', 'nest-kafka-groups');

const PORT = Number(process.env.PORT ?? 3000);
const BASE_URL = `http://127.0.0.1:${PORT}`;
const INTERVAL_MS = Number(process.env.DEMO_INTERVAL_MS ?? 3000);
const BUILD = process.env.DEMO_BUILD ?? 'auto';
const READY_TIMEOUT_MS = Number(process.env.DEMO_READY_TIMEOUT_MS ?? 120_000);
/** The service drains its consumers within KAFKA_SHUTDOWN_TIMEOUT_MS (30 s by default); then it is killed. */
const SERVICE_STOP_TIMEOUT_MS = Number(process.env.KAFKA_SHUTDOWN_TIMEOUT_MS ?? 30_000) + 15_000;

/** Signals this close to the first one are duplicates (npm forwards the terminal's SIGINT). */
const DUPLICATE_SIGNAL_MS = 1_500;

class DemoError extends Error {}

function say(message) {
  console.log(`[demo] ${message}`);
}

const state = {
  brokerStarted: false,
  /** ensureBroker() while it runs: a Ctrl-C meanwhile waits for it, so a broker being started is stopped too. */
  brokerStarting: undefined,
  brokerPending: false,
  build: undefined,
  service: undefined,
  serviceExited: undefined,
  logFile: undefined,
  poller: undefined,
  stopping: false,
  firstSignalAt: 0,
  samples: 0,
  previous: new Map(),
  lastPollAt: undefined,
};

async function main() {
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  if (!Number.isInteger(PORT) || PORT < 1 || PORT > 65535)
    throw new DemoError(`PORT=${process.env.PORT} is not a TCP port`);
  if (!(await portIsFree(PORT))) {
    throw new DemoError(`port ${PORT} is in use: stop what runs there or set PORT to another port`);
  }

  const settings = localSettings();
  say(`looking for a Kafka broker at ${settings.brokers} ...`);
  state.brokerPending = true;
  state.brokerStarting = ensureBroker(settings);
  const broker = await state.brokerStarting.finally(() => (state.brokerPending = false));
  state.brokerStarted = broker.started;
  say(
    broker.started
      ? `started a local broker at ${broker.brokers} (pid ${broker.pid}); the demo stops it on exit`
      : `reusing the broker at ${broker.brokers}`,
  );
  if (state.stopping) return;

  await buildIfNeeded();
  if (state.stopping) return;

  startService(broker.brokers);
  const startedAt = Date.now();
  await waitUntilHealthy();
  if (state.stopping) return;
  say(`service ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${BASE_URL}/health is 200`);
  say(`live page of the groups: ${BASE_URL}/kafka/ui`);
  say(`see also: ${BASE_URL}/kafka/groups, ${BASE_URL}/airnav/flights, ${BASE_URL}/metrics`);
  say('Ctrl-C stops everything the demo started');
  await printStatus();
  state.poller = setInterval(() => void printStatus(), INTERVAL_MS);
}

// ----------------------------------------------------------------------------------------------------------------
// Build

async function buildIfNeeded() {
  const exists = existsSync(MAIN);
  let reason;
  if (BUILD === 'always') reason = 'DEMO_BUILD=always';
  else if (!exists) reason = 'dist/main.js is missing';
  else if (
    BUILD !== 'never' &&
    Math.max(newestMtime(join(ROOT, 'src')), newestMtime(join(LIBRARY, 'src'))) > statSync(MAIN).mtimeMs
  )
    reason = 'src/ or the library changed since the last build';
  if (!reason) return;
  say(`building the service (${reason}) ...`);
  // The library package first: the service imports its compiled dist/ by the package name.
  let code = await runBuild([TSC, '-p', join(LIBRARY, 'tsconfig.build.json')]);
  if (code === 0 && !state.stopping) code = await runBuild([NEST_CLI, 'build']);
  state.build = undefined;
  if (state.stopping) return;
  if (code !== 0) {
    if (!existsSync(MAIN))
      throw new DemoError(`the build failed (${code}) and there is no dist/main.js to run`);
    say(`the build failed (${code}): running the dist/ it left`);
  }
}

function runBuild(args) {
  return new Promise((resolvePromise) => {
    const build = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
    state.build = build;
    build.on('exit', (exitCode, signal) => resolvePromise(exitCode ?? signal));
    build.on('error', (error) => resolvePromise(error.message));
  });
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts'))
      newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

// ----------------------------------------------------------------------------------------------------------------
// The service

function startService(brokers) {
  state.logFile = join(tmpdir(), `nest-kafka-groups-demo-${process.pid}.log`);
  const out = openSync(state.logFile, 'a');
  const env = {
    ...process.env,
    KAFKA_BROKERS: brokers,
    PORT: String(PORT),
    FEED_ENABLED: 'true',
    // The service's own log is a file: no colours in it.
    NO_COLOR: '1',
  };
  // Detached: a Ctrl-C in the terminal reaches the demo only, which stops the service with exactly one SIGTERM
  // (a second signal during Nest's shutdown would kill it before its consumers left their groups).
  const service = spawn(process.execPath, [MAIN], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  state.service = service;
  state.serviceExited = new Promise((resolvePromise) => {
    service.on('exit', (code, signal) => resolvePromise({ code, signal }));
    service.on('error', (error) => resolvePromise({ code: null, signal: null, error }));
  });
  void state.serviceExited.then((result) => {
    state.service = undefined;
    if (!state.stopping) void onServiceDied(result);
  });
  say(`service started (pid ${service.pid}) on ${BASE_URL}; its log: ${state.logFile}`);
}

async function onServiceDied({ code, signal, error }) {
  say(
    `the service exited unexpectedly (${error?.message ?? signal ?? `code ${code}`}). Last lines of its log:`,
  );
  console.log(tail(state.logFile, 25));
  await shutdown(undefined, 1);
}

async function waitUntilHealthy() {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  let announced = false;
  while (!state.stopping && state.service) {
    const health = await getJson('/health').catch((error) => ({ status: 0, body: { error: error.message } }));
    if (health.status === 200) return;
    if (health.status === 503) {
      last = describeHealthProblems(health.body);
      if (!announced) {
        say('waiting for the consumer groups to join ...');
        announced = true;
      }
    }
    if (Date.now() > deadline) {
      throw new DemoError(
        `the service was not healthy within ${READY_TIMEOUT_MS / 1000} s (${last}). Last lines of ${state.logFile}:\n` +
          tail(state.logFile, 25),
      );
    }
    await sleep(500);
  }
}

function describeHealthProblems(body) {
  const details = body?.details ?? {};
  return Object.entries(details)
    .filter(([, value]) => value?.status !== 'up')
    .map(([key, value]) => `${key}: ${value?.message ?? JSON.stringify(value?.groups ?? value)}`)
    .join('; ');
}

async function getJson(path) {
  const response = await fetch(`${BASE_URL}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: await response.json().catch(() => undefined) };
}

// ----------------------------------------------------------------------------------------------------------------
// The table

async function printStatus(final = false) {
  const now = Date.now();
  let groups;
  let health;
  try {
    [{ body: groups }, health] = await Promise.all([
      getJson('/kafka/groups'),
      getJson('/health').catch(() => undefined),
    ]);
  } catch (error) {
    if (!state.stopping || final) say(`GET /kafka/groups failed: ${error.message}`);
    return;
  }
  if (state.stopping && !final) return;
  const seconds = state.lastPollAt ? (now - state.lastPollAt) / 1000 : undefined;
  state.lastPollAt = now;

  const rows = (groups?.groups ?? []).map((group) => {
    const joined = group.members.filter((m) => m.state === 'joined').length;
    const partitions = group.members.flatMap((m) => Object.values(m.assignment).flat()).sort((a, b) => a - b);
    const before = state.previous.get(group.groupId);
    state.previous.set(group.groupId, group.counts.processed);
    const rate = seconds && before !== undefined ? (group.counts.processed - before) / seconds : undefined;
    return [
      group.groupId,
      group.state ?? '?',
      `${joined}/${group.members.length}${group.groupMembers != null && group.groupMembers !== group.members.length ? `(${group.groupMembers})` : ''}`,
      partitions.length > 0 ? partitions.join(',') : '-',
      String(group.counts.processed),
      rate === undefined ? '-' : rate.toFixed(1),
      String(group.counts.failed),
      String(group.counts.deadLettered),
      group.lag == null ? '?' : String(group.lag),
    ];
  });
  const header = ['GROUP', 'STATE', 'MEMBERS', 'PARTITIONS', 'PROCESSED', 'MSG/S', 'FAILED', 'DLT', 'LAG'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    cells
      .map((cell, i) => (i < 4 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd();

  const time = new Date(now).toISOString().slice(11, 19);
  const status = health
    ? health.status === 200
      ? 'healthy'
      : `UNHEALTHY: ${describeHealthProblems(health.body)}`
    : 'health unknown';
  console.log('');
  console.log(`${final ? 'final' : time}  ${status}`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  const flights = await aircraftLine().catch(() => undefined);
  if (flights) console.log(flights);
}

async function aircraftLine() {
  const [airnav, flight24] = await Promise.all([
    getJson('/airnav/flights?limit=1000'),
    getJson('/flight24/flights?limit=1000'),
  ]);
  // A different aircraft each time, so the table shows them moving one after another.
  const seen = Array.isArray(airnav.body) ? airnav.body : [];
  const sample = seen.length > 0 ? seen[state.samples++ % seen.length] : undefined;
  const where = sample
    ? `, e.g. ${sample.callsign} at ${sample.lat.toFixed(3)},${sample.lon.toFixed(3)} ${sample.altitude} m ` +
      `${Math.round(sample.speed * 3.6)} km/h heading ${Math.round(sample.heading)}`
    : '';
  return `aircraft seen: airnav ${airnav.body?.length ?? '?'}, flight24 ${flight24.body?.length ?? '?'}${where}`;
}

// ----------------------------------------------------------------------------------------------------------------
// Shutdown

async function shutdown(signal, exitCode = 0) {
  if (state.stopping) {
    // `npm run demo` forwards the terminal's Ctrl-C to the demo, which got it from the terminal already: a second
    // signal right after the first is that echo, not a second Ctrl-C.
    if (signal && Date.now() - state.firstSignalAt > DUPLICATE_SIGNAL_MS) {
      say(`${signal} again: stopping at once`);
      state.service?.kill('SIGKILL');
      state.build?.kill('SIGKILL');
      if (state.brokerStarted) await stopBroker().catch(() => undefined);
      else if (state.brokerPending) say('a broker may still be starting: `npm run kafka:stop` stops it');
      process.exit(1);
    }
    return;
  }
  state.stopping = true;
  state.firstSignalAt = Date.now();
  clearInterval(state.poller);
  if (signal) say(`${signal}: stopping what the demo started ...`);
  state.build?.kill('SIGTERM');
  if (state.service) {
    await printStatus(true).catch(() => undefined);
    const service = state.service;
    service.kill('SIGTERM');
    const timer = setTimeout(() => {
      say(`the service did not stop within ${SERVICE_STOP_TIMEOUT_MS / 1000} s: killing it`);
      service.kill('SIGKILL');
    }, SERVICE_STOP_TIMEOUT_MS);
    await state.serviceExited;
    clearTimeout(timer);
    say('service stopped');
  }
  const broker = await state.brokerStarting?.catch(() => undefined);
  if (broker?.started || state.brokerStarted) {
    const { stopped, pid } = await stopBroker().catch((error) => {
      say(`could not stop the broker: ${error.message}`);
      return { stopped: false };
    });
    if (stopped) say(`broker stopped (pid ${pid})`);
  }
  say('bye');
  process.exit(exitCode);
}

// ----------------------------------------------------------------------------------------------------------------
// Helpers

function portIsFree(port) {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

function tail(file, count) {
  if (!file || !existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-count).join('\n');
}

process.on('exit', () => {
  // Last resort if the demo dies of a bug: never leave the service running behind.
  state.service?.kill('SIGKILL');
});

try {
  await main();
} catch (error) {
  const expected = error instanceof DemoError || error instanceof KafkaLocalError;
  console.error(`[demo] error: ${expected ? error.message : error.stack}`);
  await shutdown(undefined, 1);
}
