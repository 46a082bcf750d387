/**
 * A real single-node Apache Kafka (KRaft) on 127.0.0.1 for machines without Docker, run from the Kafka jars on
 * Maven Central (resolved once by scripts/kafka/pom.xml into the git-ignored .kafka/ folder).
 *
 * Used by the CLI (scripts/kafka-local.mjs) and by the jest global setup. Linux and macOS.
 *
 * Layout of .kafka/:
 *   lib/                   the broker's classpath; lib/.complete holds the hash of the pom that produced it
 *   broker-<port>.pid      pid of the broker this script started on that port
 *   data-<port>/           server.properties, log4j2.properties, broker.log, console.log and kraft/ (log.dirs)
 *
 * Environment: KAFKA_BROKERS (default 127.0.0.1:<KAFKA_PORT>), KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
 * KAFKA_NODES (only 1 for now), JAVA_HOME (else `java` on the PATH).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const POM = join(REPO_ROOT, 'scripts', 'kafka', 'pom.xml');
const CACHE_DIR = join(REPO_ROOT, '.kafka');
const LIB_DIR = join(CACHE_DIR, 'lib');
const LIB_MARKER = join(LIB_DIR, '.complete');

const MIN_JAVA = 17;
const START_TIMEOUT_MS = 60_000;
// A clean shutdown of a small broker takes a few seconds; past this it is hung and gets SIGKILL.
const STOP_TIMEOUT_MS = 20_000;
const BROKER_JVM_OPTS = ['-Xms256m', '-Xmx512m', '-XX:+UseG1GC', '-Djava.awt.headless=true'];
// The storage tool runs for a second: C1 only starts it faster, and it needs little heap.
const TOOL_JVM_OPTS = ['-Xmx256m', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];

/** An expected failure with a message for the user; the CLI prints it without a stack trace. */
export class KafkaLocalError extends Error {
  name = 'KafkaLocalError';
}

export function log(message) {
  console.log(`[kafka-local] ${message}`);
}

/** Settings from the environment, read at call time so jest's global setup can change them first. */
export function localSettings(env = process.env) {
  const port = portFrom(env, 'KAFKA_PORT', 9092);
  const controllerPort = portFrom(env, 'KAFKA_CONTROLLER_PORT', 9093);
  const nodes = Number(env.KAFKA_NODES ?? 1);
  if (nodes !== 1) {
    throw new KafkaLocalError(`KAFKA_NODES=${env.KAFKA_NODES}: only a single node is supported for now`);
  }
  const localAddress = `127.0.0.1:${port}`;
  return {
    port,
    controllerPort,
    localAddress,
    brokers: env.KAFKA_BROKERS?.trim() || localAddress,
    brokersFromEnv: Boolean(env.KAFKA_BROKERS?.trim()),
    javaHome: env.JAVA_HOME,
    dataDir: join(CACHE_DIR, `data-${port}`),
    pidFile: join(CACHE_DIR, `broker-${port}.pid`),
  };
}

function portFrom(env, name, fallback) {
  const port = Number(env[name] ?? fallback);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new KafkaLocalError(`${name}=${env[name]} is not a TCP port`);
  }
  return port;
}

/** True when a Kafka admin call succeeds against `brokers` (a comma-separated string or an array). */
export async function isBrokerReachable(brokers, { timeoutMs = 2000 } = {}) {
  // Explicit retry options: under jest NODE_ENV=test switches kafkajs to other retry defaults.
  const retry = { retries: 0, initialRetryTime: 100 };
  const admin = new Kafka({
    clientId: 'kafka-local-probe',
    brokers: typeof brokers === 'string' ? brokers.split(',').map((b) => b.trim()) : brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    retry,
  }).admin({ retry });
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Reuses a broker that answers at KAFKA_BROKERS, or starts a fresh local one.
 * Resolves to { brokers, started } (plus pid and seconds when it started one).
 */
export async function ensureBroker(settings = localSettings()) {
  if (await isBrokerReachable(settings.brokers)) {
    return { brokers: settings.brokers, started: false };
  }
  if (settings.brokersFromEnv && settings.brokers !== settings.localAddress) {
    throw new KafkaLocalError(
      `no broker answers at KAFKA_BROKERS=${settings.brokers}. Start that broker, or unset KAFKA_BROKERS ` +
        `to let this script start one at ${settings.localAddress}.`,
    );
  }
  const { pid, seconds } = await startBroker({}, settings);
  return { brokers: settings.localAddress, started: true, pid, seconds };
}

/**
 * Starts a broker on KAFKA_PORT and waits until it answers an admin call. A fresh data directory unless
 * `reuseData` (an outage test restarting the broker it stopped with `keepData`, so its topics survive).
 */
export async function startBroker({ reuseData = false } = {}, settings = localSettings()) {
  const startedAt = Date.now();
  const running = readPid(settings);
  if (running !== undefined && isOurBroker(running, settings)) {
    throw new KafkaLocalError(`a broker started by this script already runs (pid ${running}); stop it first`);
  }
  rmSync(settings.pidFile, { force: true });

  const java = requireJava(settings);
  resolveJars();
  const node = clusterNodes(settings)[0];
  prepareDataDir(java, node, reuseData);

  const pid = await spawnBroker(java, node);
  writeFileSync(settings.pidFile, `${pid}\n`);
  await waitUntilReady(pid, node, settings, startedAt);
  const seconds = (Date.now() - startedAt) / 1000;
  log(`Kafka ${settings.localAddress} ready in ${seconds.toFixed(1)} s (pid ${pid}, ${node.dir})`);
  return { brokers: settings.localAddress, pid, seconds };
}

/**
 * Stops the broker this script started on KAFKA_PORT, by the pid in its pidfile only: SIGTERM, then SIGKILL
 * after STOP_TIMEOUT_MS. Removes its data directory unless `keepData`. Resolves to { stopped, pid }.
 */
export async function stopBroker({ keepData = false } = {}, settings = localSettings()) {
  const pid = readPid(settings);
  let stopped = false;
  if (pid !== undefined && isOurBroker(pid, settings)) {
    process.kill(pid, 'SIGTERM');
    if (!(await waitForExit(pid, settings, STOP_TIMEOUT_MS))) {
      log(`pid ${pid} still runs ${STOP_TIMEOUT_MS / 1000} s after SIGTERM: sending SIGKILL`);
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, settings, 5000);
    }
    stopped = true;
  }
  rmSync(settings.pidFile, { force: true });
  if (!keepData) rmSync(settings.dataDir, { recursive: true, force: true });
  return { stopped, pid: stopped ? pid : undefined };
}

/** For outage tests: the broker goes away, its data stays for startBrokerOnSameData(). */
export function stopBrokerKeepData(settings = localSettings()) {
  return stopBroker({ keepData: true }, settings);
}

export function startBrokerOnSameData(settings = localSettings()) {
  return startBroker({ reuseData: true }, settings);
}

export async function restartBroker(settings = localSettings()) {
  await stopBrokerKeepData(settings);
  return startBrokerOnSameData(settings);
}

/** What runs where: { brokers, reachable, pid (of this script's broker, if alive), dataDir }. */
export async function brokerStatus(settings = localSettings()) {
  const pid = readPid(settings);
  return {
    brokers: settings.brokers,
    reachable: await isBrokerReachable(settings.brokers),
    pid: pid !== undefined && isOurBroker(pid, settings) ? pid : undefined,
    dataDir: settings.dataDir,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Prerequisites

function requireJava(settings) {
  const java = settings.javaHome ? join(settings.javaHome, 'bin', 'java') : 'java';
  const result = spawnSync(java, ['-version'], { encoding: 'utf8' });
  // `java -version` prints to stderr: `openjdk version "17.0.15"`, or `"1.8.0_392"` before Java 9.
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${result.stderr}${result.stdout}`);
  const major = match ? Number(match[1] === '1' ? match[2] : match[1]) : undefined;
  if (major === undefined || major < MIN_JAVA) {
    const found = major === undefined ? `\`${java} -version\` failed` : `${java} is Java ${major}`;
    throw new KafkaLocalError(
      `no Kafka broker answers at ${settings.brokers}, and none can be started: ${found}, Kafka 4 needs ` +
        `Java ${MIN_JAVA}+. ${alternatives('Install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME to one')}`,
    );
  }
  return java;
}

function requireMaven() {
  if (spawnSync('mvn', ['-v'], { encoding: 'utf8' }).status !== 0) {
    throw new KafkaLocalError(
      `the Kafka jars are not in ${LIB_DIR} yet and Maven (mvn) is not there to fetch them. ` +
        alternatives('Install Maven 3 (e.g. apt-get install maven)'),
    );
  }
}

function alternatives(install) {
  return `${install}, or set KAFKA_BROKERS to a running broker, or run \`docker compose up -d\` with Docker.`;
}

/** Copies the broker's runtime jars into LIB_DIR once per version of the pom; later starts need no registry. */
function resolveJars() {
  const pomHash = createHash('sha256').update(readFileSync(POM)).digest('hex');
  if (existsSync(LIB_MARKER) && readFileSync(LIB_MARKER, 'utf8').trim() === pomHash) return;
  requireMaven();
  rmSync(LIB_DIR, { recursive: true, force: true });
  log(`fetching the Kafka jars with Maven into ${LIB_DIR} (once) ...`);
  const startedAt = Date.now();
  // -U: Maven remembers a failed download (*.lastUpdated) and would not retry it without.
  const args = ['-B', '-q', '-U', '-f', POM, 'dependency:copy-dependencies'];
  args.push('-DincludeScope=runtime', `-DoutputDirectory=${LIB_DIR}`);
  const result = spawnSync('mvn', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new KafkaLocalError(
      `Maven could not fetch the Kafka jars (exit ${result.status ?? result.signal}):\n` +
        `${lastLines(`${result.stdout}${result.stderr}`, 30)}\n${alternatives('Check access to Maven Central')}`,
    );
  }
  writeFileSync(LIB_MARKER, `${pomHash}\n`);
  log(`jars fetched in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration and storage

/**
 * The KRaft nodes of the local cluster. One today; a KAFKA_NODES>1 mode would add entries with their own node id,
 * ports and directory here, and start, stop and wait for each.
 */
function clusterNodes(settings) {
  return [{ nodeId: 1, port: settings.port, controllerPort: settings.controllerPort, dir: settings.dataDir }];
}

/** server.properties for `node`, a member of `nodes` (every node is a combined broker and controller). */
function serverProperties(node, nodes) {
  const voters = nodes.map((n) => `${n.nodeId}@127.0.0.1:${n.controllerPort}`).join(',');
  // Internal topics: one replica per node up to 3 (with fewer nodes the topics could never be created).
  const replicas = Math.min(nodes.length, 3);
  const minIsr = Math.max(1, replicas - 1);
  return {
    'process.roles': 'broker,controller',
    'node.id': node.nodeId,
    'controller.quorum.voters': voters,
    'controller.listener.names': 'CONTROLLER',
    listeners: `PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${node.port}`,
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': join(node.dir, 'kraft'),
    'offsets.topic.replication.factor': replicas,
    'transaction.state.log.replication.factor': replicas,
    'transaction.state.log.min.isr': minIsr,
    'share.coordinator.state.topic.replication.factor': replicas,
    'share.coordinator.state.topic.min.isr': minIsr,
    // Test speed: no 3 s wait per new group, 1 offsets partition instead of 50 created on the first join, and
    // client session timeouts down to 1 s (the 6 s default minimum would refuse them).
    'group.initial.rebalance.delay.ms': 0,
    'offsets.topic.num.partitions': 1,
    'group.min.session.timeout.ms': 1000,
    // Tests create their topics with the partitions they need; a missing topic stays an error they can provoke.
    'auto.create.topics.enable': false,
    // The cleaner's default 128 MiB buffer is wasted on a test broker with a 512 MiB heap.
    'log.cleaner.dedupe.buffer.size': 16_777_216,
  };
}

/** INFO from the classes worth reading in tests (start-up, group rebalances), WARN from the rest. */
function log4jProperties(node) {
  return {
    'appender.file.type': 'File',
    'appender.file.name': 'file',
    'appender.file.fileName': files(node.dir).brokerLog,
    'appender.file.layout.type': 'PatternLayout',
    'appender.file.layout.pattern': '[%d] %p %m (%c)%n',
    'rootLogger.level': 'WARN',
    'rootLogger.appenderRef.file.ref': 'file',
    'logger.server.name': 'kafka.server.KafkaRaftServer',
    'logger.server.level': 'INFO',
    'logger.groups.name': 'org.apache.kafka.coordinator.group',
    'logger.groups.level': 'INFO',
  };
}

function writeProperties(file, properties) {
  const lines = Object.entries(properties).map(([key, value]) => `${key}=${value}`);
  writeFileSync(file, `# Written by scripts/kafka-local-lib.mjs on every start.\n${lines.join('\n')}\n`);
}

/** The files in a node's directory. */
function files(dir) {
  return {
    server: join(dir, 'server.properties'),
    log4j: join(dir, 'log4j2.properties'),
    brokerLog: join(dir, 'broker.log'),
    console: join(dir, 'console.log'),
    meta: join(dir, 'kraft', 'meta.properties'),
  };
}

/** Writes the configuration; formats a fresh directory, or checks that the kept one was formatted. */
function prepareDataDir(java, node, reuseData) {
  const f = files(node.dir);
  if (reuseData) {
    if (!existsSync(f.meta)) {
      throw new KafkaLocalError(`no broker data to reuse in ${node.dir}: start without --reuse-data`);
    }
  } else {
    // A fresh directory per start: no stale meta.properties, lock files or topics from an earlier run.
    rmSync(node.dir, { recursive: true, force: true });
  }
  mkdirSync(node.dir, { recursive: true });
  writeProperties(f.server, serverProperties(node, [node]));
  writeProperties(f.log4j, log4jProperties(node));
  if (!reuseData) formatStorage(java, node);
}

function formatStorage(java, node) {
  const f = files(node.dir);
  // No --standalone: the voters are static (controller.quorum.voters).
  const args = [...TOOL_JVM_OPTS, `-Dlog4j2.configurationFile=${f.log4j}`, '-cp', classpath()];
  args.push('kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', f.server);
  const result = spawnSync(java, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new KafkaLocalError(
      `formatting ${node.dir} failed:\n${lastLines(`${result.stdout}${result.stderr}`, 30)}`,
    );
  }
}

/**
 * What `kafka-storage random-uuid` prints (a base64url UUID that does not start with '-'), made here to save
 * starting a JVM.
 */
function newClusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Passed unexpanded: the JVM expands a trailing `/*` to every jar in the folder. */
function classpath() {
  return join(LIB_DIR, '*');
}

// ---------------------------------------------------------------------------------------------------------------
// The broker process

async function spawnBroker(java, node) {
  const f = files(node.dir);
  // Output before log4j is up (JVM errors, a crash) goes to console.log; detached so the broker outlives the CLI.
  const out = openSync(f.console, 'a');
  const args = [...BROKER_JVM_OPTS, `-Dlog4j2.configurationFile=${f.log4j}`, '-cp', classpath()];
  args.push('kafka.Kafka', f.server);
  const child = spawn(java, args, { cwd: node.dir, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  await once(child, 'spawn');
  child.unref();
  return child.pid;
}

async function waitUntilReady(pid, node, settings, startedAt) {
  while (Date.now() - startedAt < START_TIMEOUT_MS) {
    if (!isOurBroker(pid, settings)) {
      rmSync(settings.pidFile, { force: true });
      throw new KafkaLocalError(`the broker exited during start-up.\n${logTails(node)}`);
    }
    if (await isBrokerReachable(settings.localAddress, { timeoutMs: 1000 })) return;
    await sleep(200);
  }
  // Stopped rather than left half-started; its data stays for a look at what went wrong.
  await stopBroker({ keepData: true }, settings);
  throw new KafkaLocalError(
    `the broker did not answer within ${START_TIMEOUT_MS / 1000} s.\n${logTails(node)}`,
  );
}

function readPid(settings) {
  if (!existsSync(settings.pidFile)) return undefined;
  const pid = Number(readFileSync(settings.pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * True while `pid` is a live Kafka broker started with this port's server.properties. Guards against signalling
 * an unrelated process that got the pid of a broker which died without this script noticing.
 */
function isOurBroker(pid, settings) {
  const { state, args } = processInfo(pid);
  // A zombie (state Z) has exited but is not reaped yet by its parent.
  return state !== 'Z' && args.includes('kafka.Kafka') && args.includes(files(settings.dataDir).server);
}

/** State letter and command line of `pid` ('' when there is none): /proc on Linux (slim images lack ps), else ps. */
function processInfo(pid) {
  if (process.platform === 'linux') {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // stat is `pid (name) state ...`, and the name may contain spaces or parentheses.
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return { state, args: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ') };
    } catch {
      return { state: '', args: '' };
    }
  }
  const ps = spawnSync('ps', ['-ww', '-o', 'stat=,args=', '-p', String(pid)], { encoding: 'utf8' });
  if (ps.error) throw new KafkaLocalError(`cannot run ps to check pid ${pid}: ${ps.error.message}`);
  const [state = '', ...args] = ps.stdout.trim().split(/\s+/);
  return { state: state.slice(0, 1), args: args.join(' ') };
}

async function waitForExit(pid, settings, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isOurBroker(pid, settings)) return true;
    await sleep(100);
  }
  return false;
}

/** The end of the broker's logs, without stack frames: the errors and their "Caused by" lines stay readable. */
function logTails(node) {
  const f = files(node.dir);
  const tails = [f.brokerLog, f.console]
    .filter((file) => existsSync(file))
    .map((file) => [
      file,
      lastLines(readFileSync(file, 'utf8').replace(/^\s+(at |\.\.\. \d+ more).*\n/gm, ''), 25),
    ])
    .filter(([, tail]) => tail !== '')
    .map(([file, tail]) => `--- last lines of ${file}:\n${tail}`);
  return tails.length > 0 ? tails.join('\n') : `(the broker logged nothing in ${node.dir})`;
}

function lastLines(text, count) {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}
