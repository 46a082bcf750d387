import { type ChildProcess, spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from 'nest-kafka-groups/testing';

/**
 * Where the foreign clients are built and installed, each keyed by its sources: outside the checkout, so a fresh
 * clone (CI's) reuses them; nothing goes into the system.
 */
export const INTEROP_CACHE =
  process.env.INTEROP_CACHE_DIR ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nest-kafka-groups-interop');

/**
 * The JSON-lines protocol spoken by the foreign clients of the interop specs (test/support/go/main.go,
 * test/support/python/interop_rdkafka.py): one event per stdout line.
 */
export type ForeignEvent =
  | { event: 'started'; client: string }
  | { event: 'leader'; protocol: string; members: number }
  | { event: 'assigned'; memberId: string; generation: number; partitions: Record<string, number[]> | null }
  | { event: 'revoked'; generation: number }
  | ({ event: 'record' } & ForeignRecord)
  | { event: 'produced'; partition: number; offset: number; codec: string }
  | { event: 'error'; message: string }
  | { event: 'exit'; reason: string };

/** A record as a foreign client reports it; a header is [name, value], a null value stays null. */
export interface ForeignRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
  /** Only from a reader: the codec of the record batch the record came in. */
  codec?: string;
}

/** A record for a foreign producer to write, on the given partition, in a batch of the given codec. */
export interface ForeignProducerRecord {
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
  partition: number;
  codec: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
}

/** Every child started, so a crashing test process still kills them. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * A consumer-group client in a child process (the Go and librdkafka clients, the Java consumer), its stdout lines
 * parsed by the subclass into assignments, leader runs and records. `stop()` sends SIGTERM (the client commits
 * and leaves the group) and SIGKILL after a timeout.
 */
export abstract class ClientProcess<R> {
  readonly records: R[] = [];
  /** Each assignment of the watched topic, in order (eager protocols: the whole assignment each time). */
  readonly assignments: number[][] = [];
  /** Each assignment this member ran as the leader: the protocol it assigned with and how many members it saw. */
  readonly leaderRuns: { protocol: string; members: number }[] = [];
  readonly errors: string[] = [];
  memberId?: string;
  exitReason?: string;
  exitCode?: number | null;
  /** Milliseconds from spawn to the client's start report. */
  startupMs?: number;
  private readonly stderrTail: string[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly spawnedAt = Date.now();

  /**
   * @param label names the client in failure messages ("sarama member").
   * @param stdin lines written to the child's stdin, which is then closed.
   */
  constructor(
    readonly label: string,
    command: string,
    args: string[],
    { stdin = [], env = process.env, cwd }: { stdin?: string[]; env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ) {
    this.child = spawn(command, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'], env });
    children.add(this.child);
    this.exited = new Promise((resolveExit) => {
      // 'close', not 'exit': stdout is fully read (every line parsed) by then.
      this.child.once('close', (code) => {
        this.exitCode = code;
        children.delete(this.child);
        resolveExit();
      });
      this.child.once('error', (error) => {
        this.errors.push(`spawn ${command} failed: ${error.message}`);
        children.delete(this.child);
        resolveExit();
      });
    });
    this.child.stdin!.on('error', () => undefined); // a child that exits early closes the pipe; its exit says why
    this.child.stdin!.end(stdin.map((line) => `${line}\n`).join(''));
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.onLine(line));
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 50) this.stderrTail.shift();
    });
  }

  /** Parses one stdout line of the child. */
  protected abstract onLine(line: string): void;

  /** Called by the subclass on the client's start report. */
  protected started(): void {
    this.startupMs = Date.now() - this.spawnedAt;
  }

  get running(): boolean {
    return children.has(this.child);
  }

  /** The partitions of the watched topic in the latest assignment, or undefined before the first one. */
  get assignment(): number[] | undefined {
    return this.assignments.at(-1);
  }

  /** The tail of what the child wrote to stderr, for failure messages. */
  get stderr(): string {
    return this.stderrTail.join('\n');
  }

  /** Waits until `probe` holds, failing early (with stderr) if the child exits first. */
  async waitUntil(what: string, timeoutMs: number, probe: () => boolean): Promise<void> {
    await waitFor(`${this.label}: ${what}`, timeoutMs, () => {
      if (probe()) return true;
      if (!this.running)
        throw new Error(
          `the ${this.label} exited (code ${this.exitCode}, reason ${this.exitReason}, errors ${JSON.stringify(this.errors)})`,
        );
      return false;
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n--- ${this.label} stderr (tail) ---\n${this.stderr}`);
    });
  }

  /** Resolves when the child exited by itself; fails (with stderr) if it is still running after `timeoutMs`. */
  async finished(timeoutMs: number): Promise<this> {
    if (!(await this.exitWithin(timeoutMs)))
      throw new Error(
        `the ${this.label} still runs after ${timeoutMs} ms\n--- stderr (tail) ---\n${this.stderr}`,
      );
    return this;
  }

  /** SIGTERM (commit, leave the group), then SIGKILL if it is still running after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
    if (!(await this.exitWithin(timeoutMs))) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** SIGKILL, as a crash: nothing committed, the group not left. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  private async exitWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>(
      (resolveTimeout) => (timer = setTimeout(() => resolveTimeout(false), timeoutMs)),
    );
    const exited = await Promise.race([this.exited.then(() => true as const), timedOut]);
    clearTimeout(timer);
    return exited;
  }
}

/** A foreign client speaking the JSON-lines protocol (ForeignEvent), every event kept in `events`. */
export class ForeignClient extends ClientProcess<ForeignRecord> {
  readonly events: ForeignEvent[] = [];

  /**
   * @param label names the client in failure messages ("sarama member").
   * @param watchedTopic the topic whose partitions `assignments` track.
   * @param stdin lines written to the child's stdin, which is then closed.
   */
  constructor(
    label: string,
    command: string,
    args: string[],
    readonly watchedTopic?: string,
    stdin: string[] = [],
    env: NodeJS.ProcessEnv = process.env,
  ) {
    super(label, command, args, { stdin, env });
  }

  protected onLine(line: string): void {
    let event: ForeignEvent;
    try {
      event = JSON.parse(line) as ForeignEvent;
    } catch {
      this.errors.push(`not a JSON line on stdout: ${line}`);
      return;
    }
    this.events.push(event);
    switch (event.event) {
      case 'started':
        this.started();
        break;
      case 'assigned':
        this.assignments.push([...((this.watchedTopic && event.partitions?.[this.watchedTopic]) || [])]);
        this.memberId = event.memberId;
        break;
      case 'leader':
        this.leaderRuns.push({ protocol: event.protocol, members: event.members });
        break;
      case 'record':
        this.records.push(event);
        break;
      case 'error':
        this.errors.push(event.message);
        break;
      case 'exit':
        this.exitReason = event.reason;
        break;
      default:
        break; // revoked, produced: kept in events
    }
  }
}
