import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientProcess } from '../foreign-client.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..', '..');
/** The broker's jars, cached by scripts/kafka-local.mjs (kafka-clients and log4j among them). */
export const KAFKA_LIB = process.env.KAFKA_LIB_DIR ?? join(REPO, '.kafka', 'lib');
export const INTEROP_CONSUMER_SOURCE = join(HERE, 'InteropConsumer.java');

/** What one of Kafka's command-line tools ended with. */
export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * One of Kafka's command-line tools (the main class a kafka-*.sh script runs, from the broker's jars) against
 * `brokers`; never rejects, the caller reads the exit code.
 */
export function kafkaTool(mainClass: string, brokers: string[], args: string[]): Promise<ToolRun> {
  return new Promise((resolve) =>
    execFile(
      'java',
      [
        '-Xmx256m',
        '-XX:TieredStopAtLevel=1',
        '-cp',
        join(KAFKA_LIB, '*'),
        mainClass,
        '--bootstrap-server',
        brokers.join(','),
        ...args,
      ],
      { timeout: 90_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error.code as number | undefined) ?? null) : 0, stdout, stderr }),
    ),
  );
}

export interface JavaRecord {
  partition: number;
  offset: number;
  key: string | undefined;
  value: string;
}

export interface JavaConsumerOptions {
  brokers: string[];
  groupId: string;
  /** The topic whose partitions `assignments` track (and the records come from). */
  topic: string;
  /** More topics to subscribe to (records of these are not expected). */
  extraTopics?: string[];
  /** The member id starts with it; Java sorts members by id in both range and roundrobin. */
  clientId?: string;
  /** The consumer closes itself after this long, whatever happens to the test. */
  maxRuntimeMs?: number;
  /** Protocols in order of preference (default range and roundrobin, range first; Java's: range, cooperative-sticky). */
  strategies?: ('range' | 'roundrobin' | 'cooperative-sticky')[];
  /** group.protocol: classic (default) or consumer (KIP-848; the strategies are then not sent). */
  groupProtocol?: 'classic' | 'consumer';
  /** group.instance.id: a static member (it still leaves the group on stop()). */
  groupInstanceId?: string;
  /** Classes from compileInteropConsumer(); without it the JVM compiles the source at each start (~2 s more). */
  classDir?: string;
}

/**
 * Compiles InteropConsumer.java once into a fresh temp directory (javac, ~1 s) and returns it; remove it with
 * removeCompiledConsumer(). Each start then skips the in-memory compile of the single-file source launch.
 */
export async function compileInteropConsumer(): Promise<string> {
  const classDir = await mkdtemp(join(tmpdir(), 'interop-consumer-'));
  await new Promise<void>((resolveCompile, reject) => {
    execFile(
      'javac',
      ['-nowarn', '-XDsuppressNotes', '-cp', join(KAFKA_LIB, '*'), '-d', classDir, INTEROP_CONSUMER_SOURCE],
      { timeout: 60_000 },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`javac failed: ${error.message}\n${stderr}`)) : resolveCompile(),
    );
  }).catch(async (error: unknown) => {
    await removeCompiledConsumer(classDir);
    throw error;
  });
  return classDir;
}

export async function removeCompiledConsumer(classDir: string | undefined): Promise<void> {
  if (classDir) await rm(classDir, { recursive: true, force: true });
}

/**
 * test/support/java/InteropConsumer.java in a child JVM (compiled classes, or a single-file source launch), its
 * stdout lines (STARTED, ASSIGNED, LEADER, RECORD, ERROR, EXIT) parsed into assignments, leader reports and
 * records. `stop()` sends SIGTERM (the consumer leaves the group) and SIGKILL after a timeout.
 */
export class JavaConsumer extends ClientProcess<JavaRecord> {
  constructor(readonly options: JavaConsumerOptions) {
    const {
      brokers,
      groupId,
      topic,
      extraTopics = [],
      clientId = 'interop-java',
      maxRuntimeMs = 120_000,
      classDir,
      strategies = ['range', 'roundrobin'],
      groupInstanceId = '-',
      groupProtocol = 'classic',
    } = options;
    const launch = classDir
      ? ['-cp', [classDir, join(KAFKA_LIB, '*')].join(delimiter), 'InteropConsumer']
      : ['-cp', join(KAFKA_LIB, '*'), INTEROP_CONSUMER_SOURCE];
    super(
      'Java consumer',
      'java',
      [
        '-Xms64m',
        '-Xmx256m',
        // A short-lived client: C1 only and the serial collector start it sooner; what it sends is the same.
        '-XX:TieredStopAtLevel=1',
        '-XX:+UseSerialGC',
        ...launch,
        brokers.join(','),
        groupId,
        [topic, ...extraTopics].join(','),
        String(maxRuntimeMs),
        clientId,
        strategies.join(','),
        groupInstanceId,
        groupProtocol,
      ],
      { cwd: REPO },
    );
  }

  protected onLine(line: string): void {
    const [kind, ...rest] = line.split(' ');
    switch (kind) {
      case 'STARTED':
        this.started();
        break;
      case 'ASSIGNED':
        this.assignments.push(rest[0] === '-' ? [] : rest[0].split(',').map(Number));
        this.memberId = rest[1];
        break;
      case 'LEADER':
        this.leaderRuns.push({ protocol: rest[0], members: Number(rest[1]) });
        break;
      case 'RECORD': {
        const [partition, offset, key] = rest;
        this.records.push({
          partition: Number(partition),
          offset: Number(offset),
          key: key === '-' ? undefined : key,
          value: rest.slice(3).join(' '),
        });
        break;
      }
      case 'ERROR':
        this.errors.push(rest.join(' '));
        break;
      case 'EXIT':
        this.exitReason = rest[0];
        break;
      default:
        break; // REVOKED, COMMITTED: informational
    }
  }
}
