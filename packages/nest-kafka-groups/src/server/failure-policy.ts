import type { ResolvedHandlerSettings } from '../kafka.options.js';
import { backoffDelay } from '../retry/backoff.js';
import { isRetryable } from '../retry/failure-classifier.js';

/**
 * What the member does with a message once its handler settled:
 * - `resolve`: mark the offset done (committed with the next commit);
 * - `retry`: pause the partition and deliver the same offset again after `delayMs`;
 * - `dead-letter`: write it to the dead-letter topic, then resolve;
 * - `forward`: (retry topics) write it to the retry topic of its next attempt, then resolve;
 * - `stop`: dead letters are off and the retries are exhausted: the partition stops, nothing is skipped;
 * - `release`: the failure came from the shutdown (aborted `ctx.signal`, modules torn down): not an attempt,
 *   nothing resolved, the message is redelivered after the restart.
 */
export type FailureDecision =
  | { readonly action: 'resolve' }
  | { readonly action: 'retry'; readonly delayMs: number }
  | { readonly action: 'dead-letter' }
  | { readonly action: 'forward' }
  | { readonly action: 'stop' }
  | { readonly action: 'release' };

export const RESOLVE: FailureDecision = Object.freeze({ action: 'resolve' });
export const DEAD_LETTER: FailureDecision = Object.freeze({ action: 'dead-letter' });
export const FORWARD: FailureDecision = Object.freeze({ action: 'forward' });
export const STOP: FailureDecision = Object.freeze({ action: 'stop' });
export const RELEASE: FailureDecision = Object.freeze({ action: 'release' });

/**
 * The retry / dead-letter / stop decision, apart from the consumer so it can be tested as a table. `error` is what
 * the handler failed with (`undefined`: it succeeded), `attempt` is 1 on the first delivery of the offset, and
 * `shuttingDown` says the application began shutting down before the handler settled. A success is resolved even
 * during shutdown (the work is done); a failure during shutdown is released, whatever the attempt. Positional
 * arguments: it runs once per message.
 */
export function decide(
  error: unknown,
  attempt: number,
  shuttingDown: boolean,
  settings: ResolvedHandlerSettings,
): FailureDecision {
  if (error === undefined) return RESOLVE;
  if (shuttingDown) return RELEASE;
  // Retry topics: every delivery is one attempt, the next one is in the retry topic (delaysMs is resolved then).
  if (settings.retry.topics) {
    if (isRetryable(error) && attempt <= settings.retry.delaysMs!.length) return FORWARD;
    return settings.deadLetter.enabled ? DEAD_LETTER : STOP;
  }
  if (isRetryable(error) && attempt < settings.retry.attempts) {
    return { action: 'retry', delayMs: backoffDelay(settings.retry, attempt) };
  }
  return settings.deadLetter.enabled ? DEAD_LETTER : STOP;
}
