/**
 * A real Apache Kafka (KRaft) on 127.0.0.1 for machines without Docker, run from the Kafka jars on Maven Central
 * (resolved once by the package's kafka/pom.xml into a cache folder): one node by default, or a cluster of
 * KAFKA_NODES combined broker+controller nodes sharing one cluster id, for replication and broker-loss tests.
 * For a jest globalSetup (`ensureBroker`), a CLI, or a test that stops and starts brokers. Linux and macOS.
 *
 * Layout of the cache folder (KAFKA_LOCAL_DIR, default `.kafka` in the working directory):
 *   lib/                   the broker's classpath; lib/.complete holds the hash of the pom that produced it
 *   broker-<port>.pid      pid of the single-node broker started on that port
 *   data-<port>/           server.properties, log4j2.properties, broker.log, console.log and kraft/ (log.dirs)
 *   cluster-<port>/        a KAFKA_NODES>1 cluster whose first node listens on <port>:
 *     node-<id>.pid          pid of node <id> (1-based; node index i has node.id i+1)
 *     node-<id>/             that node's files, laid out like data-<port>/
 *
 * Environment: KAFKA_BROKERS (default: the local node addresses), KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT,
 * KAFKA_NODES (1), JAVA_HOME (else `java` on the PATH), KAFKA_LOCAL_DIR, KAFKA_SECURITY (plaintext, or sasl_ssl
 * for a single node with SASL_SSL, mutual TLS and ACLs: see kafka-local-security.ts), KAFKA_MTLS_PORT (sasl_ssl:
 * the mutual-TLS listener, default KAFKA_CONTROLLER_PORT+1), KAFKA_OFFSETS_REPLICAS (`__consumer_offsets`'s
 * replication factor, default one per node up to 3: a cluster with 1 loses a group's coordinator with its node).
 * Ports: node index i listens for clients on KAFKA_PORT+i and for the controller quorum on KAFKA_CONTROLLER_PORT+i.
 * KAFKA_CONTROLLER_PORT defaults to 9093 for a single node and to KAFKA_PORT+KAFKA_NODES for a cluster
 * (KAFKA_NODES=3 on 9092: clients 9092-9094, controllers 9095-9097); the two ranges must not overlap.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type AclEntry, Kafka, type KafkaConfig, KafkaLogLevel } from '../client/kafkajs.js';
import { KafkaLocalError } from './kafka-local.error.js';
import {
  type KafkaLocalCredentials,
  type KafkaLocalSecurityMode,
  prepareSecurity,
  readCredentials,
  saslClientConfig,
  scramFormatArgs,
  securedServerProperties,
  securityModeFrom,
} from './kafka-local-security.js';

export { KafkaLocalError } from './kafka-local.error.js';

/** In the package, beside dist/ (and src/): the Maven project that lists the broker's jars. */
const POM = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'kafka', 'pom.xml');

const MIN_JAVA = 17;
const MAX_NODES = 9;
const START_TIMEOUT_MS = 90_000;
// Several JVMs starting at once on 2 cores take longer.
const CLUSTER_START_TIMEOUT_MS = 120_000;
// A clean shutdown of a small broker takes a few seconds; past this it is hung and gets SIGKILL.
const STOP_TIMEOUT_MS = 20_000;
/** The broker's heap unless KAFKA_HEAP_OPTS says otherwise (Kafka's start script takes 1 GB). */
const BROKER_HEAP_OPTS = '-Xms256m -Xmx512m';
/**
 * Kafka's own GC settings for the broker, unless KAFKA_JVM_PERFORMANCE_OPTS says otherwise: the default of its
 * bin/kafka-run-class.sh, word for word. Its pause goal (G1's default is ten times longer) and earlier marking keep a
 * young collection short, and every request waits behind one.
 */
const BROKER_JVM_PERFORMANCE_OPTS =
  '-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 ' +
  '-XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true';
// The storage tool runs for a second: C1 only starts it faster, and it needs little heap.
const TOOL_JVM_OPTS = ['-Xmx256m', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];

/** One node of the local broker or cluster. */
export interface KafkaLocalNode {
  /** 0-based; node.id is index + 1. */
  index: number;
  nodeId: number;
  port: number;
  controllerPort: number;
  /** `127.0.0.1:<port>` */
  address: string;
  /** Its configuration, logs (broker.log, console.log) and data. */
  dir: string;
  pidFile: string;
}

/** Where and how the local broker runs, from the environment (see the file's comment). */
export interface KafkaLocalSettings {
  port: number;
  controllerPort: number;
  nodeCount: number;
  nodes: KafkaLocalNode[];
  /** The local nodes' addresses, comma-separated. */
  localAddress: string;
  /** KAFKA_BROKERS, else `localAddress`. */
  brokers: string;
  brokersFromEnv: boolean;
  javaHome?: string;
  /** The cache folder: jars in lib/, nodes' folders and pidfiles. */
  cacheDir: string;
  dataDir: string;
  pidFile: string;
  security: KafkaLocalSecurityMode;
  mtlsPort?: number;
  /** The broker JVM's options: KAFKA_HEAP_OPTS then KAFKA_JVM_PERFORMANCE_OPTS, each defaulting as above. */
  brokerJvmOptions: string[];
  /** KAFKA_OFFSETS_REPLICAS: `offsets.topic.replication.factor`, when not the default. */
  offsetsReplicas?: number;
}

/** Users and ACLs of a secured broker (KAFKA_SECURITY=sasl_ssl), made on every fresh start. */
export interface KafkaLocalSecurityOptions {
  /** The client certificate's CN, a user with a password too (default `client`). */
  clientCertificateUser?: string;
  /** More users, each with a password and no ACL. */
  users?: string[];
  /** ACL entries created as the super user once the broker answers (see `allow`). */
  acls?: (credentials: KafkaLocalCredentials) => AclEntry[];
  /** More server.properties of a secured broker, e.g. `listener.name.sasl_ssl.connections.max.reauth.ms`. */
  brokerProperties?: Record<string, string | number | boolean>;
}

/** How to start the broker. */
export interface StartBrokerOptions {
  /** Start on the data kept by `stopBroker({ keepData: true })`, so topics and offsets survive. */
  reuseData?: boolean;
  security?: KafkaLocalSecurityOptions;
}

/** A started broker (or cluster). */
export interface StartedBroker {
  brokers: string;
  pid: number;
  pids: number[];
  seconds: number;
  credentials?: KafkaLocalCredentials;
}

/** Progress lines of the launcher (a fetch of the jars, a broker ready), on stdout. */
export function log(message: string): void {
  process.stdout.write(`[kafka-local] ${message}\n`);
}

/** Settings from the environment, read at call time so jest's global setup can change them first. */
export function localSettings(env: NodeJS.ProcessEnv = process.env): KafkaLocalSettings {
  const port = portFrom(env, 'KAFKA_PORT', 9092);
  const nodeCount = nodeCountFrom(env);
  const controllerPort = portFrom(env, 'KAFKA_CONTROLLER_PORT', nodeCount === 1 ? 9093 : port + nodeCount);
  for (const [name, base] of [
    ['KAFKA_PORT', port],
    ['KAFKA_CONTROLLER_PORT', controllerPort],
  ] as const) {
    if (base + nodeCount - 1 > 65535) {
      throw new KafkaLocalError(`${name}=${base} leaves no room for ${nodeCount} node(s) below port 65536`);
    }
  }
  if (controllerPort < port + nodeCount && port < controllerPort + nodeCount) {
    throw new KafkaLocalError(
      `client ports ${portRange(port, nodeCount)} and controller ports ${portRange(controllerPort, nodeCount)} ` +
        'overlap: choose another KAFKA_CONTROLLER_PORT',
    );
  }
  const { mode: security, error } = securityModeFrom(env);
  if (security === undefined) throw new KafkaLocalError(error);
  if (security !== 'plaintext' && nodeCount > 1) {
    throw new KafkaLocalError(`KAFKA_SECURITY=${security} runs a single node: unset KAFKA_NODES`);
  }
  const mtlsPort =
    security === 'plaintext' ? undefined : portFrom(env, 'KAFKA_MTLS_PORT', controllerPort + 1);
  const cacheDir = resolve(env.KAFKA_LOCAL_DIR?.trim() || '.kafka');
  const clusterDir = join(cacheDir, `cluster-${port}`);
  const nodes = Array.from({ length: nodeCount }, (_, index) => {
    const single = nodeCount === 1;
    const nodePort = port + index;
    return {
      index,
      nodeId: index + 1,
      port: nodePort,
      controllerPort: controllerPort + index,
      address: `127.0.0.1:${nodePort}`,
      dir: single ? join(cacheDir, `data-${port}`) : join(clusterDir, `node-${index + 1}`),
      pidFile: single ? join(cacheDir, `broker-${port}.pid`) : join(clusterDir, `node-${index + 1}.pid`),
    };
  });
  const localAddress = nodes.map((node) => node.address).join(',');
  const offsetsReplicas = env.KAFKA_OFFSETS_REPLICAS?.trim() ? Number(env.KAFKA_OFFSETS_REPLICAS) : undefined;
  if (
    offsetsReplicas !== undefined &&
    !(Number.isInteger(offsetsReplicas) && offsetsReplicas >= 1 && offsetsReplicas <= nodeCount)
  ) {
    throw new KafkaLocalError(
      `KAFKA_OFFSETS_REPLICAS=${env.KAFKA_OFFSETS_REPLICAS}: expected a replication factor from 1 to ${nodeCount} (KAFKA_NODES)`,
    );
  }
  return {
    port,
    controllerPort,
    nodeCount,
    nodes,
    localAddress,
    brokers: env.KAFKA_BROKERS?.trim() || localAddress,
    brokersFromEnv: Boolean(env.KAFKA_BROKERS?.trim()),
    javaHome: env.JAVA_HOME,
    cacheDir,
    dataDir: nodeCount === 1 ? nodes[0].dir : clusterDir,
    pidFile: nodes[0].pidFile,
    security,
    mtlsPort,
    brokerJvmOptions: [
      ...jvmOptionsFrom(env, 'KAFKA_HEAP_OPTS', BROKER_HEAP_OPTS),
      ...jvmOptionsFrom(env, 'KAFKA_JVM_PERFORMANCE_OPTS', BROKER_JVM_PERFORMANCE_OPTS),
    ],
    ...(offsetsReplicas !== undefined && { offsetsReplicas }),
  };
}

/** As Kafka's scripts read them: whitespace-separated options, the default when unset or blank. */
function jvmOptionsFrom(env: NodeJS.ProcessEnv, name: string, fallback: string): string[] {
  return (env[name]?.trim() || fallback).split(/\s+/);
}

/**
 * The secured broker's credentials ({ users: { name: password }, ca, clientCert, clientKey, ... }), or undefined
 * for a plaintext one (or before its first start).
 */
export function brokerCredentials(settings = localSettings()): KafkaLocalCredentials | undefined {
  return settings.security === 'plaintext' ? undefined : readCredentials(settings.nodes[0].dir);
}

/** kafkajs connection settings of this script's own admin calls: the super user on a secured broker. */
function adminClientConfig(settings: KafkaLocalSettings): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const credentials = brokerCredentials(settings);
  return credentials ? saslClientConfig(credentials) : {};
}

function nodeCountFrom(env: NodeJS.ProcessEnv): number {
  const raw = env.KAFKA_NODES?.trim() || '1';
  const count = Number(raw);
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) {
    throw new KafkaLocalError(`KAFKA_NODES=${env.KAFKA_NODES}: expected a node count from 1 to ${MAX_NODES}`);
  }
  return count;
}

function portRange(first: number, count: number): string {
  return count === 1 ? String(first) : `${first}-${first + count - 1}`;
}

function portFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const port = Number(env[name] ?? fallback);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new KafkaLocalError(`${name}=${env[name] ?? fallback} is not a TCP port`);
  }
  return port;
}

/** True when a Kafka admin call succeeds against `brokers` (a comma-separated string or an array). */
export async function isBrokerReachable(
  brokers: string | string[],
  { timeoutMs = 2000, client = {} }: { timeoutMs?: number; client?: Pick<KafkaConfig, 'ssl' | 'sasl'> } = {},
): Promise<boolean> {
  // Explicit retry options: under jest NODE_ENV=test switches kafkajs to other retry defaults.
  const retry = { retries: 0, initialRetryTime: 100 };
  const admin = new Kafka({
    ...client,
    clientId: 'kafka-local-probe',
    brokers: typeof brokers === 'string' ? brokers.split(',').map((b) => b.trim()) : brokers,
    logLevel: KafkaLogLevel.NOTHING,
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
export async function ensureBroker(
  settings = localSettings(),
  options: Omit<StartBrokerOptions, 'reuseData'> = {},
): Promise<{ brokers: string; started: boolean } & Partial<StartedBroker>> {
  if (await isBrokerReachable(settings.brokers, { client: adminClientConfig(settings) })) {
    return { brokers: settings.brokers, started: false };
  }
  if (settings.brokersFromEnv && settings.brokers !== settings.localAddress) {
    throw new KafkaLocalError(
      `no broker answers at KAFKA_BROKERS=${settings.brokers}. Start that broker, or unset KAFKA_BROKERS ` +
        `to let this script start one at ${settings.localAddress}.`,
    );
  }
  const { pid, pids, seconds } = await startBroker(options, settings);
  return { brokers: settings.localAddress, started: true, pid, pids, seconds };
}

/**
 * Starts the broker on KAFKA_PORT (every node of a KAFKA_NODES>1 cluster, formatted with one cluster id) and waits
 * until each answers an admin call and the cluster lists them all. A fresh data directory unless `reuseData` (an
 * outage test restarting the broker it stopped with `keepData`, so its topics survive). A secured broker
 * (KAFKA_SECURITY=sasl_ssl) gets fresh certificates and passwords for admin and the `security` users, and its
 * ACLs.
 */
export async function startBroker(
  { reuseData = false, security = {} }: StartBrokerOptions = {},
  settings = localSettings(),
): Promise<StartedBroker> {
  const startedAt = Date.now();
  for (const node of settings.nodes) {
    const running = readPid(node);
    if (running !== undefined && isOurBroker(running, node)) {
      throw new KafkaLocalError(
        `a broker started by this script already runs on ${node.address} (pid ${running}); stop it first`,
      );
    }
  }
  for (const node of settings.nodes) rmSync(node.pidFile, { force: true });

  const java = requireJava(settings);
  resolveJars(settings);
  const clusterId = newClusterId();
  if (!reuseData && settings.nodeCount > 1) rmSync(settings.dataDir, { recursive: true, force: true });
  await Promise.all(
    settings.nodes.map((node) => prepareDataDir(java, node, settings, reuseData, clusterId, security)),
  );

  // The start-up bound counts from the spawn: fetching the jars and formatting the storage take their own time.
  const spawnedAt = Date.now();
  const pids: number[] = [];
  for (const node of settings.nodes) {
    const pid = await spawnBroker(java, node, settings);
    writeFileSync(node.pidFile, `${pid}\n`);
    pids.push(pid);
  }
  await waitUntilReady(settings.nodes, settings, spawnedAt, () => stopBroker({ keepData: true }, settings));
  const credentials = brokerCredentials(settings);
  const acls = credentials && security.acls?.(credentials);
  if (credentials && acls && acls.length > 0) await createAcls(settings.localAddress, credentials, acls);
  const seconds = (Date.now() - startedAt) / 1000;
  const where = settings.nodeCount === 1 ? settings.nodes[0].dir : settings.dataDir;
  log(`Kafka ${settings.localAddress} ready in ${seconds.toFixed(1)} s (pid ${pids.join(', ')}, ${where})`);
  if (credentials) {
    log(
      `SASL_SSL on ${settings.localAddress}, mutual TLS on 127.0.0.1:${settings.mtlsPort}; users, CA and ` +
        `client certificate: ${credentials.credentials}`,
    );
  }
  return { brokers: settings.localAddress, pid: pids[0], pids, seconds, credentials };
}

/** Adds ACL entries (kafkajs createAcls format, see kafka-local-security.ts `allow`) as the super user. */
export async function createAcls(
  brokers: string,
  credentials: KafkaLocalCredentials,
  acl: AclEntry[],
): Promise<void> {
  const retry = { retries: 2, initialRetryTime: 100 };
  const admin = new Kafka({
    ...saslClientConfig(credentials),
    clientId: 'kafka-local-acls',
    brokers: brokers.split(','),
    logLevel: KafkaLogLevel.NOTHING,
    retry,
  }).admin({ retry });
  try {
    await admin.connect();
    await admin.createAcls({ acl });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Stops the broker(s) this script started on KAFKA_PORT, each by the pid in its own pidfile only: SIGTERM (every
 * node at once, so each still finds a controller quorum for its controlled shutdown), then SIGKILL after
 * STOP_TIMEOUT_MS. Removes the data unless `keepData`. Resolves to { stopped, pid, pids }.
 */
export async function stopBroker(
  { keepData = false }: { keepData?: boolean } = {},
  settings = localSettings(),
): Promise<{ stopped: boolean; pid?: number; pids: number[] }> {
  const results = await Promise.all(settings.nodes.map((node) => stopOne(node, 'SIGTERM')));
  const pids = results.filter((pid): pid is number => pid !== undefined);
  if (!keepData) rmSync(settings.dataDir, { recursive: true, force: true });
  return { stopped: pids.length > 0, pid: pids[0], pids };
}

/** For outage tests: the broker goes away, its data stays for startBrokerOnSameData(). */
export function stopBrokerKeepData(settings = localSettings()): ReturnType<typeof stopBroker> {
  return stopBroker({ keepData: true }, settings);
}

/** Starts the broker again on the data `stopBrokerKeepData` kept. */
export function startBrokerOnSameData(
  settings = localSettings(),
  security: KafkaLocalSecurityOptions = {},
): Promise<StartedBroker> {
  return startBroker({ reuseData: true, security }, settings);
}

/** Stops the broker and starts it again on the same data. */
export async function restartBroker(
  settings = localSettings(),
  security: KafkaLocalSecurityOptions = {},
): Promise<StartedBroker> {
  await stopBrokerKeepData(settings);
  return startBrokerOnSameData(settings, security);
}

/**
 * Stops one node (0-based `index`; node.id is index + 1) by its own pid and keeps its data for startNode():
 * SIGTERM is a clean shutdown (SIGKILL after STOP_TIMEOUT_MS), SIGKILL a crash. Resolves to { stopped, pid }.
 */
export async function stopNode(
  index: number,
  { signal = 'SIGTERM' }: { signal?: 'SIGTERM' | 'SIGKILL' } = {},
  settings = localSettings(),
): Promise<{ stopped: boolean; pid?: number }> {
  const pid = await stopOne(nodeAt(settings, index), signal);
  return { stopped: pid !== undefined, pid };
}

/** A crash of one node: SIGKILL, data kept. */
export function killNode(index: number, settings = localSettings()): ReturnType<typeof stopNode> {
  return stopNode(index, { signal: 'SIGKILL' }, settings);
}

/**
 * Starts one stopped node again on its kept data and waits until it answers and the cluster lists it (the other
 * nodes of a cluster must be running: a node cannot finish starting without a controller quorum).
 */
export async function startNode(
  index: number,
  settings = localSettings(),
): Promise<{ brokers: string; pid: number; seconds: number }> {
  const startedAt = Date.now();
  const node = nodeAt(settings, index);
  const running = readPid(node);
  if (running !== undefined && isOurBroker(running, node)) {
    throw new KafkaLocalError(`node ${node.nodeId} already runs on ${node.address} (pid ${running})`);
  }
  rmSync(node.pidFile, { force: true });
  const java = requireJava(settings);
  resolveJars(settings);
  await prepareDataDir(java, node, settings, true);
  const spawnedAt = Date.now();
  const pid = await spawnBroker(java, node, settings);
  writeFileSync(node.pidFile, `${pid}\n`);
  await waitUntilReady([node], settings, spawnedAt, () => stopOne(node, 'SIGTERM'));
  const seconds = (Date.now() - startedAt) / 1000;
  log(`Kafka node ${node.nodeId} ${node.address} ready in ${seconds.toFixed(1)} s (pid ${pid})`);
  return { brokers: node.address, pid, seconds };
}

/**
 * What runs where: { brokers, reachable, pid (of this script's first node, if alive), dataDir, nodes } with
 * { index, nodeId, address, pid, reachable } per local node.
 */
export async function brokerStatus(settings = localSettings()): Promise<{
  brokers: string;
  reachable: boolean;
  pid?: number;
  dataDir: string;
  nodes: { index: number; nodeId: number; address: string; pid?: number; reachable: boolean }[];
}> {
  const nodes = await Promise.all(
    settings.nodes.map(async (node) => {
      const pid = readPid(node);
      return {
        index: node.index,
        nodeId: node.nodeId,
        address: node.address,
        pid: pid !== undefined && isOurBroker(pid, node) ? pid : undefined,
        reachable: await isBrokerReachable(node.address, { client: adminClientConfig(settings) }),
      };
    }),
  );
  return {
    brokers: settings.brokers,
    reachable: await isBrokerReachable(settings.brokers, { client: adminClientConfig(settings) }),
    pid: nodes[0].pid,
    dataDir: settings.dataDir,
    nodes,
  };
}

function nodeAt(settings: KafkaLocalSettings, index: number): KafkaLocalNode {
  const node = Number.isInteger(index) ? settings.nodes[index] : undefined;
  if (!node) {
    throw new KafkaLocalError(
      `no node index ${index}: KAFKA_NODES=${settings.nodeCount} has 0 to ${settings.nodeCount - 1}`,
    );
  }
  return node;
}

/** Signals one node by the pid in its pidfile (if it is still our broker); resolves to that pid once it is gone. */
async function stopOne(node: KafkaLocalNode, signal: 'SIGTERM' | 'SIGKILL'): Promise<number | undefined> {
  const pid = readPid(node);
  let stopped: number | undefined;
  if (pid !== undefined && isOurBroker(pid, node)) {
    process.kill(pid, signal);
    if (!(await waitForExit(pid, node, signal === 'SIGKILL' ? 5000 : STOP_TIMEOUT_MS))) {
      log(`pid ${pid} still runs ${STOP_TIMEOUT_MS / 1000} s after ${signal}: sending SIGKILL`);
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, node, 5000);
    }
    stopped = pid;
  }
  rmSync(node.pidFile, { force: true });
  return stopped;
}

// ---------------------------------------------------------------------------------------------------------------
// Prerequisites

function requireJava(settings: KafkaLocalSettings): string {
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

function requireMaven(libDir: string): void {
  if (spawnSync('mvn', ['-v'], { encoding: 'utf8' }).status !== 0) {
    throw new KafkaLocalError(
      `the Kafka jars are not in ${libDir} yet and Maven (mvn) is not there to fetch them. ` +
        alternatives('Install Maven 3 (e.g. apt-get install maven)'),
    );
  }
}

function alternatives(install: string): string {
  return `${install}, or set KAFKA_BROKERS to a running broker, or run \`docker compose up -d\` with Docker.`;
}

/**
 * Copies the broker's runtime jars into <cache>/lib once per version of the pom (Maven), so later starts need no
 * registry; a no-op when they are there. Also for anything else that runs on Kafka's jars (a Java client in a test).
 */
export function resolveJars(settings = localSettings()): void {
  const LIB_DIR = libDir(settings);
  const LIB_MARKER = join(LIB_DIR, '.complete');
  const pomHash = createHash('sha256').update(readFileSync(POM)).digest('hex');
  if (existsSync(LIB_MARKER) && readFileSync(LIB_MARKER, 'utf8').trim() === pomHash) return;
  requireMaven(LIB_DIR);
  rmSync(LIB_DIR, { recursive: true, force: true });
  log(`fetching the Kafka jars with Maven into ${LIB_DIR} (once) ...`);
  const startedAt = Date.now();
  // -U: Maven remembers a failed download (*.lastUpdated) and would not retry it without.
  // -C: a jar whose checksum does not match the repository's fails the fetch instead of being used with a warning.
  const args = ['-B', '-q', '-U', '-C', '-f', POM, 'dependency:copy-dependencies'];
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

/** server.properties for `node`, a member of `nodes` (every node is a combined broker and controller). */
function serverProperties(
  node: KafkaLocalNode,
  nodes: KafkaLocalNode[],
  offsetsReplicas?: number,
): Record<string, string | number | boolean> {
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
    'offsets.topic.replication.factor': offsetsReplicas ?? replicas,
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
function log4jProperties(node: KafkaLocalNode): Record<string, string> {
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

function writeProperties(file: string, properties: Record<string, string | number | boolean>): void {
  const lines = Object.entries(properties).map(([key, value]) => `${key}=${value}`);
  writeFileSync(file, `# Written by nest-kafka-groups/testing on every start.\n${lines.join('\n')}\n`);
}

/** The files in a node's directory. */
function files(dir: string) {
  return {
    server: join(dir, 'server.properties'),
    log4j: join(dir, 'log4j2.properties'),
    brokerLog: join(dir, 'broker.log'),
    console: join(dir, 'console.log'),
    meta: join(dir, 'kraft', 'meta.properties'),
  };
}

/**
 * Writes the configuration; formats a fresh directory (with the cluster's id), or checks that the kept one was
 * formatted.
 */
async function prepareDataDir(
  java: string,
  node: KafkaLocalNode,
  settings: KafkaLocalSettings,
  reuseData: boolean,
  clusterId = '',
  security: KafkaLocalSecurityOptions = {},
): Promise<void> {
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
  let credentials: KafkaLocalCredentials | undefined;
  if (settings.security !== 'plaintext') {
    credentials = reuseData
      ? readCredentials(node.dir)
      : prepareSecurity(node.dir, security.clientCertificateUser ?? 'client', security.users);
  }
  const properties = serverProperties(node, settings.nodes, settings.offsetsReplicas);
  if (credentials) {
    Object.assign(
      properties,
      securedServerProperties(node, settings.mtlsPort!, credentials),
      security.brokerProperties,
    );
  }
  writeProperties(f.server, properties);
  writeProperties(f.log4j, log4jProperties(node));
  if (!reuseData) await formatStorage(java, node, settings, clusterId, credentials);
}

/** Every node of a cluster is formatted with the same cluster id; run in parallel, so asynchronously. */
async function formatStorage(
  java: string,
  node: KafkaLocalNode,
  settings: KafkaLocalSettings,
  clusterId: string,
  credentials: KafkaLocalCredentials | undefined,
): Promise<void> {
  const f = files(node.dir);
  // No --standalone: the voters are static (controller.quorum.voters).
  const args = [...TOOL_JVM_OPTS, `-Dlog4j2.configurationFile=${f.log4j}`, '-cp', classpath(settings)];
  args.push('kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', f.server);
  if (credentials) args.push(...scramFormatArgs(credentials));
  const result = await runTool(java, args);
  if (result.status !== 0) {
    throw new KafkaLocalError(
      `formatting ${node.dir} failed:\n${lastLines(`${result.stdout}${result.stderr}`, 30)}`,
    );
  }
}

function runTool(
  command: string,
  args: string[],
): Promise<{ status: number | NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (status, signal) =>
      resolvePromise({ status: status ?? signal, stdout: output, stderr: '' }),
    );
  });
}

/**
 * What `kafka-storage random-uuid` prints (a base64url UUID that does not start with '-'), made here to save
 * starting a JVM.
 */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function libDir(settings: KafkaLocalSettings): string {
  return join(settings.cacheDir, 'lib');
}

/** Passed unexpanded: the JVM expands a trailing `/*` to every jar in the folder. */
function classpath(settings: KafkaLocalSettings): string {
  return join(libDir(settings), '*');
}

// ---------------------------------------------------------------------------------------------------------------
// The broker process

async function spawnBroker(
  java: string,
  node: KafkaLocalNode,
  settings: KafkaLocalSettings,
): Promise<number> {
  const f = files(node.dir);
  // Output before log4j is up (JVM errors, a crash) goes to console.log; detached so the broker outlives the CLI.
  const out = openSync(f.console, 'a');
  const args = [
    ...settings.brokerJvmOptions,
    `-Dlog4j2.configurationFile=${f.log4j}`,
    '-cp',
    classpath(settings),
  ];
  args.push('kafka.Kafka', f.server);
  const child = spawn(java, args, { cwd: node.dir, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  await once(child, 'spawn');
  child.unref();
  return child.pid!;
}

/**
 * Waits until every node in `nodes` runs, answers an admin call on its own address, and is listed by the cluster
 * (all KAFKA_NODES of them: a node registered with the controller quorum). On failure calls `stop` and throws.
 */
async function waitUntilReady(
  nodes: KafkaLocalNode[],
  settings: KafkaLocalSettings,
  spawnedAt: number,
  stop: () => Promise<unknown>,
): Promise<void> {
  const timeoutMs = settings.nodeCount === 1 ? START_TIMEOUT_MS : CLUSTER_START_TIMEOUT_MS;
  while (Date.now() - spawnedAt < timeoutMs) {
    for (const node of nodes) {
      if (!isOurBroker(readPid(node), node)) {
        rmSync(node.pidFile, { force: true });
        await stop();
        throw new KafkaLocalError(`the broker ${node.address} exited during start-up.\n${logTails(node)}`);
      }
    }
    if (await allReady(nodes, settings)) return;
    await sleep(200);
  }
  // Stopped rather than left half-started; its data stays for a look at what went wrong.
  await stop();
  throw new KafkaLocalError(
    `the broker did not answer within ${timeoutMs / 1000} s.\n${nodes.map((node) => logTails(node)).join('\n')}`,
  );
}

async function allReady(nodes: KafkaLocalNode[], settings: KafkaLocalSettings): Promise<boolean> {
  const client = adminClientConfig(settings);
  for (const node of nodes) {
    if (!(await isBrokerReachable(node.address, { timeoutMs: 1000, client }))) return false;
  }
  if (settings.nodeCount === 1) return true;
  const listed = await clusterBrokerIds(nodes[0].address);
  return nodes.every((node) => listed.has(node.nodeId)) && listed.size >= settings.nodeCount;
}

/** Node ids the cluster reports as live brokers, asked through `address`. */
async function clusterBrokerIds(address: string): Promise<Set<number>> {
  const retry = { retries: 0, initialRetryTime: 100 };
  const admin = new Kafka({
    clientId: 'kafka-local-probe',
    brokers: [address],
    logLevel: KafkaLogLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 1000,
    retry,
  }).admin({ retry });
  try {
    await admin.connect();
    const { brokers } = await admin.describeCluster();
    return new Set(brokers.map((broker) => broker.nodeId));
  } catch {
    return new Set();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function readPid(node: KafkaLocalNode): number | undefined {
  if (!existsSync(node.pidFile)) return undefined;
  const pid = Number(readFileSync(node.pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * True while `pid` is a live Kafka broker started with this node's server.properties. Guards against signalling
 * an unrelated process that got the pid of a broker which died without this script noticing.
 */
function isOurBroker(pid: number | undefined, node: KafkaLocalNode): boolean {
  if (pid === undefined) return false;
  const { state, args } = processInfo(pid);
  // A zombie (state Z) has exited but is not reaped yet by its parent.
  return state !== 'Z' && args.includes('kafka.Kafka') && args.includes(files(node.dir).server);
}

/** State letter and command line of `pid` ('' when there is none): /proc on Linux (slim images lack ps), else ps. */
function processInfo(pid: number): { state: string; args: string } {
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

async function waitForExit(pid: number, node: KafkaLocalNode, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isOurBroker(pid, node)) return true;
    await sleep(100);
  }
  return false;
}

/** The end of the broker's logs, without stack frames: the errors and their "Caused by" lines stay readable. */
function logTails(node: KafkaLocalNode): string {
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

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}
