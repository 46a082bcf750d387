import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from 'nest-kafka-groups/testing';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..', '..');
/** The broker's jars, cached by scripts/kafka-local.mjs (kafka-clients and log4j among them). */
export const KAFKA_LIB = process.env.KAFKA_LIB_DIR ?? join(REPO, '.kafka', 'lib');
export const INTEROP_CONSUMER_SOURCE = join(HERE, 'InteropConsumer.java');

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
  /** Protocols in order of preference, of 'range' and 'roundrobin' (default both, range first). */
  strategies?: ('range' | 'roundrobin')[];
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

/** Every child started, so a crashing test process still kills them (see the 'exit' hook below). */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * test/support/java/InteropConsumer.java in a child JVM (compiled classes, or a single-file source launch), its stdout parsed into
 * assignments, leader reports and records. `stop()` sends SIGTERM (the consumer leaves the group) and SIGKILL
 * after a timeout.
 */
export class JavaConsumer {
  readonly records: JavaRecord[] = [];
  /** Each ASSIGNED line: the partitions of the topic assigned to this member (eager: the whole assignment). */
  readonly assignments: number[][] = [];
  /** Each LEADER line: the protocol it assigned with and how many members it saw. */
  readonly leaderRuns: { protocol: string; members: number }[] = [];
  readonly errors: string[] = [];
  memberId?: string;
  exitReason?: string;
  exitCode?: number | null;
  /** Milliseconds from spawn to STARTED (JVM start, in-memory compile, consumer created). */
  startupMs?: number;
  private readonly stderrTail: string[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

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
    } = options;
    const launch = classDir
      ? ['-cp', [classDir, join(KAFKA_LIB, '*')].join(delimiter), 'InteropConsumer']
      : ['-cp', join(KAFKA_LIB, '*'), INTEROP_CONSUMER_SOURCE];
    const spawnedAt = Date.now();
    this.child = spawn(
      'java',
      [
        '-Xms64m',
        '-Xmx256m',
        ...launch,
        brokers.join(','),
        groupId,
        [topic, ...extraTopics].join(','),
        String(maxRuntimeMs),
        clientId,
        strategies.join(','),
        groupInstanceId,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(this.child);
    this.exited = new Promise((resolveExit) => {
      // 'close', not 'exit': stdout is fully read (every line parsed) by then.
      this.child.once('close', (code) => {
        this.exitCode = code;
        children.delete(this.child);
        resolveExit();
      });
      this.child.once('error', (error) => {
        this.errors.push(`spawn failed: ${error.message}`);
        children.delete(this.child);
        resolveExit();
      });
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.onLine(line, spawnedAt));
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 50) this.stderrTail.shift();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return children.has(this.child);
  }

  /** The partitions of the latest assignment, or undefined before the first one. */
  get assignment(): number[] | undefined {
    return this.assignments.at(-1);
  }

  /** Kafka's logging (WARN and up) and anything else the JVM wrote to stderr, for failure messages. */
  get stderr(): string {
    return this.stderrTail.join('\n');
  }

  private onLine(line: string, spawnedAt: number): void {
    const [kind, ...rest] = line.split(' ');
    switch (kind) {
      case 'STARTED':
        this.startupMs = Date.now() - spawnedAt;
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

  /** Waits until `probe` holds, failing early (with stderr) if the JVM exits first. */
  async waitUntil(what: string, timeoutMs: number, probe: () => boolean): Promise<void> {
    await waitFor(`Java consumer: ${what}`, timeoutMs, () => {
      if (probe()) return true;
      if (!this.running)
        throw new Error(
          `the Java consumer exited (code ${this.exitCode}, errors ${JSON.stringify(this.errors)}):\n${this.stderr}`,
        );
      return false;
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n--- Java stderr (tail) ---\n${this.stderr}`);
    });
  }

  /** SIGTERM (wakeup, close, leave the group), then SIGKILL if it is still running after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>(
      (resolveTimeout) => (timer = setTimeout(() => resolveTimeout('timeout'), timeoutMs)),
    );
    const result = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
