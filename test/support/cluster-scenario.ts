/**
 * Pieces shared by the specs that kill brokers of a cluster under a consuming group (coordinator-failover,
 * coordinator-lost): a logger that keeps every line with its time, a watch on Node's MaxListenersExceededWarning, and
 * a producer that writes keyed records until stopped.
 */
import { ConsoleLogger } from '@nestjs/common';
import type { KafkaTestClient } from 'nest-kafka-groups/testing';

/** A Nest logger that keeps every line with its time (performance.now(), as the recorded deliveries). */
export class CapturingLogger extends ConsoleLogger {
  readonly lines: { at: number; level: string; message: string; context?: string }[] = [];

  /** `printAll`: print the log and debug lines too (warn and error are always printed). */
  constructor(private readonly printAll = false) {
    super();
  }

  private keep(level: string, message: unknown, rest: unknown[]): void {
    const last = rest[rest.length - 1];
    this.lines.push({
      at: performance.now(),
      level,
      message: String(message),
      context: typeof last === 'string' ? last : undefined,
    });
  }
  override log(message: unknown, ...rest: unknown[]): void {
    this.keep('log', message, rest);
    if (this.printAll) super.log(message, ...rest);
  }
  override debug(message: unknown, ...rest: unknown[]): void {
    this.keep('debug', message, rest);
    if (this.printAll) super.debug(message, ...rest);
  }
  override verbose(message: unknown, ...rest: unknown[]): void {
    this.keep('verbose', message, rest);
  }
  override warn(message: unknown, ...rest: unknown[]): void {
    this.keep('warn', message, rest);
    super.warn(message, ...rest);
  }
  override error(message: unknown, ...rest: unknown[]): void {
    this.keep('error', message, rest);
    super.error(message, ...rest);
  }
}

/**
 * Node's MaxListenersExceededWarning lines on stderr. Node writes process warnings there; a spec's `process` is
 * Jest's copy of it, whose 'warning' listeners Node never calls.
 */
export function watchListenerWarnings() {
  const lines: string[] = [];
  const stderr = process.stderr as { write: (...args: unknown[]) => boolean };
  const write = stderr.write;
  return {
    lines,
    start() {
      stderr.write = (chunk: unknown, ...rest: unknown[]) => {
        if (/MaxListenersExceededWarning/.test(String(chunk))) lines.push(String(chunk).trim());
        return write.call(process.stderr, chunk, ...rest);
      };
    },
    stop() {
      stderr.write = write;
    },
  };
}

/**
 * Produces keyed records (`seq` counting up, 5 per send) every 50 ms until stopped; keeps the sequence numbers whose
 * send was acknowledged (acks all). A send that fails during an election is not counted and the loop goes on.
 */
export async function produceUntilStopped(kafka: KafkaTestClient, topic: string) {
  const producer = await kafka.producer();
  const acknowledged: number[] = [];
  let seq = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const batch = Array.from({ length: 5 }, () => seq++);
      try {
        await producer.send({
          topic,
          acks: -1,
          messages: batch.map((n) => ({ key: `k${n % 24}`, value: JSON.stringify({ seq: n }) })),
        });
        acknowledged.push(...batch);
      } catch {
        // Not acknowledged: not counted.
      }
      // Unref'd: a test that failed before stop() must not keep Jest's process alive with this loop for ever.
      await new Promise((resolve) => setTimeout(resolve, 50).unref());
    }
  })();
  return {
    acknowledged,
    async stop() {
      running = false;
      await loop;
    },
  };
}
