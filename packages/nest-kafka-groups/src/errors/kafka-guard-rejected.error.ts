import { KafkaNonRetryableError } from './kafka-non-retryable.error.js';

/**
 * A guard refused the message. Guards are deterministic about a message, so retrying is pointless; the message is
 * dead-lettered rather than silently committed, so nothing is lost.
 */
export class KafkaGuardRejectedError extends KafkaNonRetryableError {
  constructor(topic: string, groupId: string, detail: string) {
    super(`A guard rejected the message on topic "${topic}" in group "${groupId}": ${detail}`);
  }
}
