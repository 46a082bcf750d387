/**
 * What the fault-suite runner and its worker processes agree on: environment variables, the lines a worker
 * prints for the runner, and which messages fail (deterministically, by sequence number, so the runner knows
 * what to expect in the dead-letter topic).
 */

/** Every line a worker prints for the runner starts with this; everything else is log output. */
export const LINE_PREFIX = '@@';

/**
 * Lines (space-separated fields after the prefix):
 *   READY                                    the consumer app started (joining is not awaited)
 *   P <seq> <partition> <offset> <attempt> <ms>   a handler finished successfully at epoch <ms>
 *   F <seq> <partition> <offset> <attempt> <ms>   a handler threw an injected failure
 *   A <firstSeq> <lastSeq> <ms>              the producer got the broker's ack for these messages
 *   E <ms> <message>                         the producer's send failed; it sends the same messages again
 *   DONE <ms>                                the producer got an ack for every message
 *   L <ms> <level> <context> <message>       a log line (log, warn, error) of the worker's Nest Logger: evidence
 *   CLOSED <ms>                              a consumer's app.close() resolved after SIGTERM (it exits 0 next)
 */
export type WorkerLine =
  | { kind: 'READY' }
  | { kind: 'P' | 'F'; seq: number; partition: number; offset: string; attempt: number; at: number }
  | { kind: 'A'; first: number; last: number; at: number }
  | { kind: 'E'; at: number; message: string }
  | { kind: 'DONE'; at: number }
  | { kind: 'L'; at: number; level: string; context: string; message: string }
  | { kind: 'CLOSED'; at: number };

export function parseLine(line: string): WorkerLine | undefined {
  if (!line.startsWith(LINE_PREFIX)) return undefined;
  const [kind, ...f] = line.slice(LINE_PREFIX.length).trimEnd().split(' ');
  switch (kind) {
    case 'READY':
      return { kind };
    case 'P':
    case 'F':
      return {
        kind,
        seq: Number(f[0]),
        partition: Number(f[1]),
        offset: f[2],
        attempt: Number(f[3]),
        at: Number(f[4]),
      };
    case 'A':
      return { kind, first: Number(f[0]), last: Number(f[1]), at: Number(f[2]) };
    case 'E':
      return { kind, at: Number(f[0]), message: f.slice(1).join(' ') };
    case 'DONE':
    case 'CLOSED':
      return { kind, at: Number(f[0]) };
    case 'L':
      return { kind, at: Number(f[0]), level: f[1], context: f[2], message: f.slice(3).join(' ') };
    default:
      return undefined;
  }
}

/** Environment of a worker process (all strings, as spawn passes them). */
export interface WorkerEnv {
  FAULT_ROLE: 'consumer' | 'producer';
  FAULT_BROKERS: string;
  FAULT_TOPIC: string;
  FAULT_GROUP: string;
  FAULT_NAME: string;
  /** consumer: '1' to throw the injected handler failures (see `injectedFailure`). */
  FAULT_FAILURES?: string;
  /** consumer: milliseconds of simulated work per message. */
  FAULT_WORK_MS?: string;
  FAULT_SESSION_TIMEOUT_MS?: string;
  /** 'library-default' to leave forRoot's clientRetry unset (the library's defaults) instead of the suite's. */
  FAULT_CLIENT_RETRY?: string;
  /** producer: how many messages, at what rate, and '1' to make some of them poison pills. */
  FAULT_MESSAGES?: string;
  FAULT_RATE?: string;
  FAULT_POISON?: string;
  /** producer: '1' to send odd sequence numbers without a key (see `isUnkeyed`). */
  FAULT_UNKEYED?: string;
  /** A secured cluster: SASL_SSL with this mechanism and user, trusting this CA (PEM file). */
  FAULT_SASL_MECHANISM?: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  FAULT_SASL_USERNAME?: string;
  FAULT_SASL_PASSWORD?: string;
  FAULT_SSL_CA_FILE?: string;
  /** producer: '1' to mix hostile messages into the stream (see `hostileOf`); consumer: the limits they break. */
  FAULT_HOSTILE?: string;
  /** consumer: milliseconds a slow message (see `isSlow`) takes; the handler gives up when ctx.signal aborts. */
  FAULT_SLOW_MS?: string;
  /** consumer: fixed retry backoff in milliseconds instead of the suite's 50, 100 ms. */
  FAULT_BACKOFF_MS?: string;
  /** consumer: '1' to retry through retry topics (RETRY_TOPIC_DELAYS) instead of on the paused partition. */
  FAULT_RETRY_TOPICS?: string;
  /** consumer: '1' to handle the topic with a batch handler (`batch: true`, `maxBatchSize: BATCH_SIZE`). */
  FAULT_BATCH?: string;
  /**
   * consumer: every this many ms the next step of a runtime-control cycle through KafkaGroups: pause, resume,
   * stop, start (then again).
   */
  FAULT_CONTROL_CYCLE_MS?: string;
  /** consumer: '1' to start the application without joining the group (`autoStart: false`) until SIGUSR2. */
  FAULT_STANDBY?: string;
}

/** Most messages per call of the batch handler (scenarios with `batch`). */
export const BATCH_SIZE = 50;

/** The slow messages of the scenarios that set `slowMs`: 1 in 100. */
export function isSlow(seq: number): boolean {
  return seq % 100 === 31;
}

export function isUnkeyed(seq: number): boolean {
  return seq % 2 === 1;
}

/** shutdownTimeoutMs of the consumer workers: every SIGTERMed worker must be gone within it. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/** Attempts per message (the first delivery included), as the workers configure the library. */
export const RETRY_ATTEMPTS = 3;

/** The retry topics' delays of the scenarios with `retryTopics`: RETRY_ATTEMPTS - 1 of them. */
export const RETRY_TOPIC_DELAYS = [300, 1_000];

/** The retry topics of a fault topic, as the library names them for RETRY_TOPIC_DELAYS. */
export function retryTopicsOf(topic: string): string[] {
  return RETRY_TOPIC_DELAYS.map((delay) => `${topic}-retry-${delay}`);
}

/**
 * The handler-exception scenario's failures, 8 % of the messages: 5 % fail once (attempt 1), 2 % twice (attempts
 * 1 and 2, success on the third), 1 % on every attempt (exhausted: dead-lettered after attempt 3).
 */
export function injectedFailure(seq: number, attempt: number): boolean {
  if (seq % 100 === 13) return true;
  if (seq % 50 === 7) return attempt <= 2;
  if (seq % 20 === 3) return attempt === 1;
  return false;
}

export function exhaustsRetries(seq: number): boolean {
  return seq % 100 === 13;
}

/** The poison-pill scenario: 1 % bytes that are not JSON, 1 % JSON that fails validation; both go to the DLT at once. */
export type Poison = 'not-json' | 'invalid' | undefined;

export function poisonOf(seq: number): Poison {
  if (seq % 100 === 42) return 'not-json';
  if (seq % 100 === 77) return 'invalid';
  return undefined;
}

/**
 * The hostile-mix scenario: one message in 50 is hostile, cycling through the kinds. The first five break a bound
 * (dead-lettered at once); a `__proto__` header and ANSI bytes in the body are handled like any message.
 */
export const HOSTILE_KINDS = ['headers', 'keys', 'deep', 'extra', 'big', 'proto', 'ansi'] as const;
export type Hostile = (typeof HOSTILE_KINDS)[number] | undefined;

export function hostileOf(seq: number): Hostile {
  return seq % 50 === 25 ? HOSTILE_KINDS[Math.floor(seq / 50) % HOSTILE_KINDS.length] : undefined;
}

export function hostileDeadLetter(seq: number): boolean {
  const kind = hostileOf(seq);
  return kind !== undefined && kind !== 'proto' && kind !== 'ansi';
}

/** maxValueBytes of the hostile-mix consumers: low enough that a `big` message fits a normal producer batch. */
export const HOSTILE_MAX_VALUE_BYTES = 256 * 1024;

export interface FaultOutgoing {
  value: Buffer | object;
  headers?: Record<string, string>;
}

/** What a producer sends for `seq`: a FaultMessage, or the poison pill or hostile message planned for it. */
export function messageOf(seq: number, poison: boolean, hostile: boolean): FaultOutgoing {
  const kind = poison ? poisonOf(seq) : undefined;
  if (kind === 'not-json') return { value: Buffer.from(`{"seq":${seq},"body":"truncated`) };
  if (kind === 'invalid') return { value: { seq, body: 12345 } };
  const plain = { seq, body: `message ${seq}` };
  switch (hostile ? hostileOf(seq) : undefined) {
    case 'headers':
      // Over maxHeaders (256) by far, yet small enough for the runner's plain kafkajs to read back.
      return {
        value: plain,
        headers: Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`h${i}`, 'v'])),
      };
    case 'keys':
      return {
        value: {
          ...plain,
          map: Object.fromEntries(Array.from({ length: 12_000 }, (_, i) => [i.toString(36), 0])),
        },
      };
    case 'deep':
      return { value: Buffer.from(`{"seq":${seq},"body":${'['.repeat(10_000)}${']'.repeat(10_000)}}`) };
    case 'extra':
      return { value: { ...plain, junk: 'x'.repeat(100 * 1024) } };
    case 'big':
      return { value: Buffer.from(JSON.stringify({ ...plain, body: '0'.repeat(HOSTILE_MAX_VALUE_BYTES) })) };
    case 'proto': {
      const headers: Record<string, string> = {};
      Object.defineProperty(headers, '__proto__', { value: 'x', enumerable: true });
      return { value: plain, headers };
    }
    case 'ansi':
      return { value: { seq, body: `\u001b[31m${seq}\u001b[0m\nFAKE LOG LINE` } };
    default:
      return { value: plain };
  }
}
