/**
 * The fault suite: `npm run test:faults` (compiles test/faults/ and the library to dist-faults/, then runs this).
 *
 *   node dist-faults/test/faults/run-faults.js [scenario ...] [--update-doc]
 *
 * Starts its own brokers with the local launcher (never reuses or touches one it did not start): a single node on
 * FAULTS_KAFKA_PORT (19092, controller +1) for most scenarios, and a three-node cluster on FAULTS_CLUSTER_PORT
 * (19192-19194, controllers 19195-19197) for the broker-loss scenario, and a secured single node (SASL_SSL, ACLs:
 * KAFKA_SECURITY=sasl_ssl) on FAULTS_SECURED_PORT (19392, controller +1, mutual TLS +2) for the secured scenario. (Ports below Linux's ephemeral range,
 * 32768 and up: a three-node start once failed because an outgoing connection held a controller port there.) Each scenario runs consumer worker processes
 * (worker.ts: a Nest app with this library) and a producer process, injects its fault, waits until the group
 * committed everything, reads the source and dead-letter topics back and prints one table row. Exits 1 when any
 * scenario lost a message or broke another expectation (see analysis.ts). Worker logs: dist-faults/logs/.
 * `--update-doc` writes the table and details into docs/RELIABILITY.md between its fault-table markers.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as KafkaLocal from '../../scripts/kafka-local-lib.mjs';
import type * as KafkaLocalSecurity from '../../scripts/kafka-local-security.mjs';
import {
  type ClusterHandle,
  emptyRow,
  type LostEvidence,
  type ScenarioResult,
  ScenarioRun,
  type ScenarioSpec,
} from './scenario-run.js';
import { SCENARIOS } from './scenarios.js';

const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
const LOGS = join(REPO_ROOT, 'dist-faults', 'logs');
const DOC = join(REPO_ROOT, 'docs', 'RELIABILITY.md');
const DOC_START = '<!-- fault-table:start -->';
const DOC_END = '<!-- fault-table:end -->';
/** Bound on each file of evidence kept for a failed scenario (a log dump, a worker's log). */
const EVIDENCE_BYTES = 8 * 1024 * 1024;

// The launcher is plain JavaScript next to the sources; this file runs from dist-faults/, so import it by path.
const local = (await import(
  pathToFileURL(join(REPO_ROOT, 'scripts', 'kafka-local-lib.mjs')).href
)) as typeof KafkaLocal;
const security = (await import(
  pathToFileURL(join(REPO_ROOT, 'scripts', 'kafka-local-security.mjs')).href
)) as typeof KafkaLocalSecurity;
/** The secured cluster's consumers and producer: an ordinary user with ACLs on the suite's topics and groups. */
const FAULTS_USER = 'svc-faults';

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'scripts', 'kafka-local-lib.mjs')) && existsSync(join(dir, 'package.json')))
      return dir;
    if (dirname(dir) === dir) throw new Error(`no repository root above ${from}`);
  }
}

function say(message: string): void {
  console.log(`[faults] ${message}`);
}

/** A broker (or cluster) this run started, stopped by its own pidfiles only. */
class LocalCluster implements ClusterHandle {
  readonly brokers: string;
  readonly replicationFactor: number;
  readonly topicConfig: { name: string; value: string }[];
  security?: ClusterHandle['security'];
  private running = false;

  constructor(
    readonly name: string,
    private readonly settings: KafkaLocal.LocalSettings,
  ) {
    this.brokers = settings.localAddress;
    this.replicationFactor = Math.min(settings.nodeCount, 3);
    this.topicConfig = settings.nodeCount >= 3 ? [{ name: 'min.insync.replicas', value: '2' }] : [];
  }

  async start(): Promise<void> {
    if (await local.isBrokerReachable(this.brokers)) {
      throw new Error(
        `a broker already answers at ${this.brokers}; the fault suite starts and kills its own brokers, so it will ` +
          'not use that one: stop it, or choose other ports with FAULTS_KAFKA_PORT / FAULTS_CLUSTER_PORT',
      );
    }
    this.running = true;
    if (this.settings.security === 'plaintext') {
      await local.startBroker({}, this.settings);
      return;
    }
    const { brokers, credentials } = await local.startBroker({ users: [FAULTS_USER] }, this.settings);
    await local.createAcls(brokers, credentials!, [
      ...security.allow(FAULTS_USER, 'TOPIC', 'faults-', ['DESCRIBE', 'READ', 'WRITE'], true),
      ...security.allow(FAULTS_USER, 'GROUP', 'faults-', ['DESCRIBE', 'READ'], true),
    ]);
    this.security = {
      client: security.saslClientConfig(credentials!),
      workerEnv: {
        FAULT_SASL_MECHANISM: 'scram-sha-512',
        FAULT_SASL_USERNAME: FAULTS_USER,
        FAULT_SASL_PASSWORD: credentials!.users[FAULTS_USER],
        FAULT_SSL_CA_FILE: credentials!.ca,
      },
    };
  }

  /** Stops it; `keepData` leaves the logs for a post-mortem (the next run starts afresh). */
  async stop(keepData = false): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await local.stopBroker({ keepData }, this.settings);
    if (keepData) say(`kept the ${this.name} data for a look: ${this.settings.dataDir}`);
  }

  /** Keeps the brokers' logs of a failed scenario next to the worker logs. */
  saveLogs(dir: string): void {
    for (const node of this.settings.nodes) {
      const log = join(node.dir, 'broker.log');
      if (existsSync(log)) copyFileSync(log, join(dir, `broker-node-${node.nodeId}.log`));
    }
  }

  /**
   * What `kafka-dump-log.sh --print-data-log` prints (DumpLogSegments from the broker's jars) for the partitions of
   * `evidence` on every node that has them: each batch's producer id, epoch and sequence numbers and each record's
   * offset, create time, key and headers, so a missing record can be told from one acknowledged as a duplicate. One
   * JVM for every segment (each headed "Dumping <path>", the path names the node), into one file cut at
   * EVIDENCE_BYTES. Returns the file, or undefined when no node has those partitions.
   */
  dumpPartitions(dir: string, { topic, partitions }: LostEvidence): string | undefined {
    const segments = this.settings.nodes.flatMap((node) =>
      partitions.flatMap((partition) => {
        const partitionDir = join(node.dir, 'kraft', `${topic}-${partition}`);
        if (!existsSync(partitionDir)) return [];
        return readdirSync(partitionDir)
          .filter((file) => file.endsWith('.log'))
          .sort()
          .map((file) => join(partitionDir, file));
      }),
    );
    if (segments.length === 0) return undefined;
    const java = this.settings.javaHome ? join(this.settings.javaHome, 'bin', 'java') : 'java';
    const classpath = join(this.settings.cacheDir, 'lib', '*');
    const dump = spawnSync(
      java,
      ['-Xmx256m', '-cp', classpath, 'kafka.tools.DumpLogSegments', '--print-data-log'].concat(
        '--files',
        segments.join(','),
      ),
      { maxBuffer: 4 * EVIDENCE_BYTES, timeout: 180_000 },
    );
    const file = join(dir, `dump-${topic}.txt`);
    const output = Buffer.concat([dump.stdout ?? Buffer.alloc(0), dump.stderr ?? Buffer.alloc(0)]);
    const failure = dump.error ? `\n(DumpLogSegments failed: ${dump.error.message})\n` : '';
    writeFileSync(file, Buffer.concat([output.subarray(0, EVIDENCE_BYTES), Buffer.from(failure)]));
    return file;
  }

  async stopAll({ keepData }: { keepData: boolean }): Promise<void> {
    await local.stopBroker({ keepData }, this.settings);
  }

  async startAll({ reuseData }: { reuseData: boolean }): Promise<void> {
    await local.startBroker({ reuseData }, this.settings);
  }

  async killNode(index: number): Promise<void> {
    await local.killNode(index, this.settings);
  }

  async stopNode(index: number): Promise<void> {
    await local.stopNode(index, { signal: 'SIGTERM' }, this.settings);
  }

  async startNode(index: number): Promise<void> {
    await local.startNode(index, this.settings);
  }
}

function clusterFor(kind: ScenarioSpec['cluster']): LocalCluster {
  const env = (port: string, nodes: string) => ({
    JAVA_HOME: process.env.JAVA_HOME,
    KAFKA_PORT: port,
    KAFKA_NODES: nodes,
  });
  if (kind === 'secured') {
    const port = Number(process.env.FAULTS_SECURED_PORT ?? 19392);
    return new LocalCluster(
      'secured single node (SASL_SSL, SCRAM-SHA-512, ACLs)',
      local.localSettings({
        ...env(String(port), '1'),
        KAFKA_CONTROLLER_PORT: String(port + 1),
        KAFKA_MTLS_PORT: String(port + 2),
        KAFKA_SECURITY: 'sasl_ssl',
      }),
    );
  }
  if (kind === 'single') {
    const port = Number(process.env.FAULTS_KAFKA_PORT ?? 19092);
    return new LocalCluster(
      'single node',
      local.localSettings({ ...env(String(port), '1'), KAFKA_CONTROLLER_PORT: String(port + 1) }),
    );
  }
  return new LocalCluster(
    'three nodes',
    local.localSettings(env(process.env.FAULTS_CLUSTER_PORT ?? '19192', '3')),
  );
}

/**
 * A failed scenario's evidence, in its log folder (printed): the workers' logs (each cut to its last EVIDENCE_BYTES),
 * observations.json and the brokers' logs, and for lost records a dump of the dead-letter partitions that should
 * hold them.
 */
function keepEvidence(cluster: LocalCluster, { spec, logDir, evidence }: ScenarioResult): void {
  for (const file of readdirSync(logDir).filter((f) => /^(w\d+|producer)\.log$/.test(f))) {
    const path = join(logDir, file);
    const size = statSync(path).size;
    if (size <= EVIDENCE_BYTES) continue;
    const tail = readFileSync(path).subarray(size - EVIDENCE_BYTES);
    writeFileSync(path, Buffer.concat([Buffer.from(`(first ${size - EVIDENCE_BYTES} bytes cut)\n`), tail]));
  }
  if (evidence) {
    const dump = cluster.dumpPartitions(logDir, evidence);
    say(
      `${spec.name}: lost seq ${evidence.seqs.slice(0, 20).join(', ')}; ${evidence.topic} partition(s) ` +
        `${evidence.partitions.join(', ')}: ${dump ? `DumpLogSegments into ${dump}` : 'on no node'}`,
    );
  }
  say(`${spec.name}: evidence kept in ${logDir} (worker and broker logs, observations.json, log dumps)`);
}

function formatRow(result: ScenarioResult): string[] {
  const { row } = result;
  const recovery = row.recoverySeconds === undefined ? '-' : row.recoverySeconds.toFixed(1);
  return [
    result.spec.name,
    String(row.produced),
    String(row.processed),
    String(row.duplicates),
    String(row.lost),
    String(row.deadLettered),
    recovery,
    row.problems.length === 0 ? 'pass' : 'FAIL',
  ];
}

function table(results: ScenarioResult[]): string {
  const header = [
    'scenario',
    'produced',
    'processed (distinct)',
    'duplicates',
    'lost',
    'dead-lettered',
    'recovery s',
    'result',
  ];
  const rows = [header, ...results.map(formatRow)];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => (i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  // Prettier's form of a Markdown table, so the written section needs no reformatting.
  const rule = `| ${widths.map((w, i) => (i === 0 || i === widths.length - 1 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(header), rule, ...rows.slice(1).map(line)].join('\n');
}

function details(results: ScenarioResult[]): string {
  const parts: string[] = [];
  for (const { spec, row, notes, seconds } of results) {
    parts.push(
      `- **${spec.name}**: ${spec.description}. ${spec.messages} messages at ${spec.rate}/s, ${seconds.toFixed(0)} s.`,
    );
    for (const window of row.recovery) {
      const where = window.partition === undefined ? '' : ` (partition ${window.partition})`;
      parts.push(`  - recovery after "${window.label}": ${window.seconds.toFixed(1)} s${where}`);
    }
    if (row.duplicates === 0) parts.push('  - duplicates: none');
    for (const [reason, count] of row.duplicateReasons) parts.push(`  - duplicates: ${count} ${reason}`);
    for (const note of notes) parts.push(`  - ${note}`);
    for (const problem of row.problems) parts.push(`  - **FAILED**: ${problem}`);
  }
  return parts.join('\n');
}

function updateDoc(markdown: string): void {
  const text = readFileSync(DOC, 'utf8');
  const start = text.indexOf(DOC_START);
  const end = text.indexOf(DOC_END);
  if (start < 0 || end < start) throw new Error(`${DOC} has no ${DOC_START} ... ${DOC_END} section`);
  writeFileSync(DOC, `${text.slice(0, start + DOC_START.length)}\n\n${markdown}\n${text.slice(end)}`);
  say(`wrote the results into ${DOC}`);
}

async function main(argv: string[]): Promise<number> {
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  const flags = argv.filter((a) => a.startsWith('--'));
  if (unknown.length > 0 || flags.some((f) => f !== '--update-doc')) {
    console.error(`usage: run-faults [${SCENARIOS.map((s) => s.name).join(' | ')} ...] [--update-doc]`);
    return 2;
  }
  // With no names: every scenario but the opt-in ones (slow rows whose finding an e2e spec already covers).
  const selected = SCENARIOS.filter((s) => (names.length === 0 ? !s.optIn : names.includes(s.name)));
  const startedAt = Date.now();
  rmSync(LOGS, { recursive: true, force: true });
  mkdirSync(LOGS, { recursive: true });

  const results: ScenarioResult[] = [];
  const clusters: LocalCluster[] = [];
  const interrupted = async (signal: NodeJS.Signals) => {
    say(`${signal}: stopping the brokers this run started`);
    await Promise.all(clusters.map((c) => c.stop().catch(() => undefined)));
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  for (const kind of ['single', 'triple', 'secured'] as const) {
    const specs = selected.filter((s) => s.cluster === kind);
    if (specs.length === 0) continue;
    const cluster = clusterFor(kind);
    clusters.push(cluster);
    say(`starting a ${cluster.name} Kafka at ${cluster.brokers}`);
    let failedHere = false;
    try {
      await cluster.start();
      for (const spec of specs) {
        say(`${spec.name}: ${spec.description}`);
        const logDir = join(LOGS, spec.name);
        const result = await new ScenarioRun(spec, cluster, logDir, randomUUID().slice(0, 8), say).run();
        results.push(result);
        const [, produced, processed, duplicates, lost, dead, recovery, verdict] = formatRow(result);
        say(
          `${spec.name}: ${verdict} in ${result.seconds.toFixed(0)} s: produced ${produced}, processed ${processed}, ` +
            `duplicates ${duplicates}, lost ${lost}, dead-lettered ${dead}, recovery ${recovery} s`,
        );
        say(`${spec.name}: ${result.timings?.join(', ')}`);
        for (const problem of result.row.problems) say(`${spec.name}: FAILED: ${problem}`);
        if (result.row.problems.length > 0) {
          failedHere = true;
          cluster.saveLogs(logDir);
          keepEvidence(cluster, result);
        }
      }
    } catch (error) {
      say(`the ${cluster.name} cluster failed: ${(error as Error).message}`);
      results.push(
        ...specs.filter((s) => !results.some((r) => r.spec === s)).map((spec) => failed(spec, error)),
      );
    } finally {
      await cluster.stop(failedHere);
    }
  }

  const totalSeconds = (Date.now() - startedAt) / 1000;
  const markdown = `${table(results)}\n\n${details(results)}\n\nTotal run time: ${totalSeconds.toFixed(0)} s.`;
  console.log(`\n${markdown}\n`);
  writeFileSync(join(LOGS, 'results.md'), `${markdown}\n`);
  if (flags.includes('--update-doc')) updateDoc(markdown);
  const failures = results.filter((r) => r.row.problems.length > 0);
  writeReport(results.length - failures.length, failures.length);
  if (failures.length > 0) {
    say(`FAILED: ${failures.map((r) => r.spec.name).join(', ')} (logs in ${LOGS})`);
    return 1;
  }
  say(`all ${results.length} scenario(s) passed in ${totalSeconds.toFixed(0)} s`);
  return 0;
}

/** One test per scenario in reports/faults.json, in jest's `--json` shape, for CI's pass/fail summary. */
function writeReport(passed: number, failedCount: number): void {
  mkdirSync('reports', { recursive: true });
  const report = {
    success: failedCount === 0,
    numPassedTests: passed,
    numFailedTests: failedCount,
    numPendingTests: 0,
    testResults: [],
  };
  writeFileSync(join('reports', 'faults.json'), `${JSON.stringify(report)}\n`);
}

function failed(spec: ScenarioSpec, error: unknown): ScenarioResult {
  return {
    spec,
    seconds: 0,
    logDir: join(LOGS, spec.name),
    notes: [],
    row: emptyRow(`not run: ${(error as Error).message}`),
  };
}

process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error);
  return 1;
});
// Worker handles and kafkajs timers must not keep a finished run alive.
setTimeout(() => process.exit(process.exitCode), 1_000).unref();
