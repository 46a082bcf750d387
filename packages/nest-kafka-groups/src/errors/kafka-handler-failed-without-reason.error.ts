import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * A handler failed with `undefined` as the reason (`throw undefined`, `Promise.reject()`, `throwError(() =>
 * undefined)`): a failure like any other (retried, then dead-lettered), named so the log line and the dead-letter
 * headers say what happened instead of "undefined".
 */
export class KafkaHandlerFailedWithoutReasonError extends KafkaGroupsError {
  /** `offsets`: the message's offset, or a batch's first and last. */
  constructor(topic: string, partition: number, offsets: string, groupId: string) {
    super(
      `The handler of topic "${topic}" partition ${partition} at ${offsets} in group "${groupId}" failed without a reason (it threw or rejected with undefined)`,
    );
  }
}
