import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * A handler ran longer than `maxProcessingTimeMs`: its `ctx.signal` was aborted with this error as the reason, and
 * the delivery counts as a failed (retryable) attempt once the handler gave up.
 */
export class KafkaHandlerTimeoutError extends KafkaGroupsError {
  constructor(
    handlerName: string,
    topic: string,
    partition: number,
    offset: string,
    maxProcessingTimeMs: number,
  ) {
    super(
      `${handlerName} on ${topic}[${partition}]@${offset} ran longer than maxProcessingTimeMs (${maxProcessingTimeMs} ms); ctx.signal aborted`,
    );
  }
}
