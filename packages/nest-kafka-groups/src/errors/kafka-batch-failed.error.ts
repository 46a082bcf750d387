import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * Thrown by a batch handler (`@KafkaHandler(topic, { batch: true })`) to say which message of the call failed,
 * like Spring Kafka's `BatchListenerFailedException`: the messages before `index` count as handled and are
 * committed; the message at `index` is retried (or dead-lettered, with `cause` in the dead-letter headers) with the
 * handler's retry policy, and the next call starts with it. `index` is a position in the payload array the handler
 * received. Any other error fails the whole call.
 */
export class KafkaBatchFailedError extends KafkaGroupsError {
  constructor(
    readonly index: number,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`Batch handler failed at index ${index}: ${reason}`, { cause });
  }
}
