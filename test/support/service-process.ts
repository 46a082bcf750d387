import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from 'nest-kafka-groups/testing';

export interface ProcessedLine {
  topic: string;
  partition: number;
  offset: string;
  key: string;
}

const PROCESSED = /Processed message \(topic=([^,]+), partition=(\d+), offset=(\d+), key=([^)]*)\)/;

/**
 * The built example service (dist/main.js) as a child process, as a user runs several copies of it; it reports
 * what it handled through its debug log lines.
 */
export class ServiceProcess {
  readonly processed: ProcessedLine[] = [];
  private readonly child: ChildProcess;
  private output = '';
  private httpPort?: number;
  private exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** `onLine` sees every line the service writes, stdout and stderr, before any filtering. */
  constructor(env: Record<string, string>, onLine?: (line: string) => void) {
    this.child = spawn(process.execPath, ['dist/main.js'], {
      env: { ...process.env, NO_COLOR: '1', LOG_LEVEL: 'debug', PORT: '0', FEED_ENABLED: 'false', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        onLine?.(line);
        this.httpPort ??= Number(/HTTP on port (\d+)/.exec(line)?.[1]) || undefined;
        const match = PROCESSED.exec(line);
        if (match)
          this.processed.push({
            topic: match[1],
            partition: Number(match[2]),
            offset: match[3],
            key: match[4],
          });
        else this.output = (this.output + line + '\n').slice(-20_000);
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      if (onLine) for (const line of text.split('\n')) onLine(line);
      this.output = (this.output + text).slice(-20_000);
    });
  }

  /** Recent non-message output, for failure messages. */
  get log(): string {
    return this.output;
  }

  /** The HTTP port the service logged (it listens on PORT=0 unless told otherwise). */
  get port(): number {
    if (this.httpPort === undefined) {
      throw new Error(`service pid ${this.child.pid} has not logged its HTTP port:\n${this.output}`);
    }
    return this.httpPort;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async waitUntilListening(timeoutMs = 30_000): Promise<void> {
    await waitFor(`service pid ${this.child.pid} to start`, timeoutMs, () => {
      if (this.child.exitCode !== null)
        throw new Error(`service exited with ${this.child.exitCode}:\n${this.output}`);
      return this.output.includes('HTTP on port');
    });
  }

  /**
   * SIGTERM (graceful) or SIGKILL; resolves once the process is gone. After a graceful close Nest re-raises the
   * signal, so a clean SIGTERM shutdown ends with `signal: 'SIGTERM'` rather than an exit code.
   */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
    timeoutMs = 20_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const exit = await this.exited!;
    clearTimeout(timer);
    return exit;
  }
}
