import { KafkaGroupsError } from './kafka-groups.error.js';

/** Writing a message to its dead-letter topic failed; the original offset stays uncommitted. */
export class KafkaDeadLetterError extends KafkaGroupsError {
  constructor(deadLetterTopic: string, topic: string, partition: number, offset: string, cause: unknown) {
    super(
      `Could not write ${topic}[${partition}]@${offset} to dead-letter topic "${deadLetterTopic}": ${(cause as Error)?.message ?? cause}`,
      { cause },
    );
  }
}
