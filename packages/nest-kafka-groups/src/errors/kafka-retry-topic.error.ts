import { KafkaGroupsError } from './kafka-groups.error.js';

/** Writing a failed message to the retry topic of its next attempt failed; the original offset stays uncommitted. */
export class KafkaRetryTopicError extends KafkaGroupsError {
  constructor(retryTopic: string, topic: string, partition: number, offset: string, cause: unknown) {
    super(
      `Could not write ${topic}[${partition}]@${offset} to retry topic "${retryTopic}": ${(cause as Error)?.message ?? cause}`,
      { cause },
    );
  }
}
