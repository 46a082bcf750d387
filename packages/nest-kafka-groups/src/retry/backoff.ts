import type { KafkaRetryOptions } from '../kafka.options.js';

/** Delay before delivery `failedAttempt + 1`: exponential from `initialDelayMs`, capped at `maxDelayMs`. */
export function backoffDelay(retry: KafkaRetryOptions, failedAttempt: number): number {
  const delay = retry.initialDelayMs * retry.multiplier ** (failedAttempt - 1);
  return Math.min(delay, retry.maxDelayMs);
}
