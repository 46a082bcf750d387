import { KafkaGroupsError } from './kafka-groups.error.js';

/** A pause, resume or seek named a topic its consumer group does not consume. */
export class KafkaUnknownGroupTopicError extends KafkaGroupsError {
  constructor(
    readonly groupId: string,
    readonly topic: string,
    readonly groupTopics: readonly string[],
  ) {
    super(
      `Consumer group "${groupId}" does not consume topic "${topic}" (its topics: ` +
        `${groupTopics.map((t) => `"${t}"`).join(', ')})`,
    );
  }
}
