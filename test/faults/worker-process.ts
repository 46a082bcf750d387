import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLine, type WorkerEnv, type WorkerLine } from './protocol.js';

const WORKER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One worker OS process (worker.js): its protocol lines go to `onLine` as they arrive, everything else to its log
 * file. Stopped only through its own child handle.
 */
export class WorkerProcess {
  readonly exited: Promise<WorkerExit>;
  readonly ready: Promise<void>;
  /** Set when the runner signalled it (an expected exit). */
  signalled?: { signal: NodeJS.Signals; at: number };
  exit?: WorkerExit;
  /** When it reported that app.close() resolved (after a SIGTERM). */
  closedAt?: number;
  /** Its application started (only then does it handle SIGTERM by closing it). */
  isReady = false;
  /** A standby (`FAULT_STANDBY`) is not in the group until `join()`. */
  inGroup: boolean;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;

  constructor(
    readonly name: string,
    env: WorkerEnv,
    readonly logFile: string,
    onLine: (line: WorkerLine, worker: WorkerProcess) => void,
  ) {
    this.inGroup = env.FAULT_STANDBY !== '1';
    this.log = createWriteStream(logFile, { flags: 'a' });
    this.child = spawn(process.execPath, [WORKER_SCRIPT], {
      env: { ...process.env, ...env, NO_COLOR: '1', NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let resolveReady!: () => void;
    let rejectReady!: (error: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    // 'close': the process ended and its output was read to the end (its last lines arrive before).
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        rejectReady(
          new Error(`worker ${name} exited (${signal ?? code}) before it was ready; see ${logFile}`),
        );
        resolve(this.exit);
      }),
    );
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const text of lines) {
        const line = parseLine(text);
        if (!line) {
          this.log.write(`${text}\n`);
        } else if (line.kind === 'L' && line.level === 'debug') {
          // Not printed by the worker's logger: kept in its log for a post-mortem, and reported as evidence.
          this.log.write(`[debug ${new Date(line.at).toISOString()}] [${line.context}] ${line.message}\n`);
          onLine(line, this);
        } else if (line.kind === 'READY') {
          this.isReady = true;
          resolveReady();
        } else {
          onLine(line, this);
        }
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.log.write(chunk));
    this.child.once('close', () => this.log.end());
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Lets a standby join the group (SIGUSR2: its app starts its consumer group). */
  join(): void {
    this.inGroup = true;
    this.child.kill('SIGUSR2');
  }

  /** Sends `signal` (recording when); resolves once the process is gone (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals, timeoutMs = 20_000): Promise<WorkerExit> {
    if (this.alive) {
      this.signalled ??= { signal, at: Date.now() };
      this.child.kill(signal);
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}
