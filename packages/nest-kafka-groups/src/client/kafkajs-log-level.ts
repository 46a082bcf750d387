/** The Nest level a kafkajs log entry is printed at. */
export type NestLogLevel = 'error' | 'warn' | 'log' | 'debug';

/** kafkajs's numeric levels (its `logLevel` enum), repeated so this mapping stays a pure function. */
const ERROR = 1;
const WARN = 2;

/** Lines about a connection that failed: the broker connectivity lines report outages instead. */
const CONNECTION =
  /^Connection (error|timeout|closed)|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|EPIPE|Failed to connect/;

/**
 * Normal protocol events, and errors the client recovers from by itself or throws to the library (which logs
 * them once, with the group and topic): coordinator loading or moving, rebalances, the consumer's own crash and
 * restart lines (the member logs its own), a rejoin after the coordinator forgot the member.
 */
const NORMAL = [
  /^Response /, // a broker's error answer, retried or thrown to the caller
  /^The group is rebalancing/,
  /^The coordinator is not aware of this member/,
  /^Crash: /,
  /^Restarting the consumer in/,
  /^Limiting retries for the idempotent producer/, // bounded on purpose (dead-letter producer)
];

/** Bugs in this library's callbacks: they stay ERROR. */
const BUGS = [
  /^Error when calling each(Batch|Message)/,
  /^Failed to execute listener/,
  /^Caught error when invoking/,
];

/**
 * Maps a kafkajs log entry onto Nest's levels. kafkajs logs at ERROR many events it then retries or reports by
 * throwing, so ERROR is kept for bugs only; what it retries (an entry with `retryCount`) and the normal protocol
 * events go to debug; kafkajs INFO lines (joined, paused, resumed, started) are debug detail under the library's own
 * lines. Anything else is a WARN.
 */
export function nestLevelOf(level: number, message: string, extra: Record<string, unknown>): NestLogLevel {
  if (level > WARN) return 'debug';
  if (BUGS.some((pattern) => pattern.test(message))) return level === ERROR ? 'error' : 'warn';
  if ('retryCount' in extra || CONNECTION.test(message) || NORMAL.some((pattern) => pattern.test(message))) {
    return 'debug';
  }
  return 'warn';
}
