import { KafkaGroupsError } from './kafka-groups.error.js';
import { quotedTopics } from './topic-names.js';

/** A pause, resume or seek named a topic its consumer group does not consume. */
export class KafkaUnknownGroupTopicError extends KafkaGroupsError {
  constructor(
    readonly groupId: string,
    readonly topic: string,
    readonly groupTopics: readonly string[],
  ) {
    super(
      `Consumer group "${groupId}" does not consume topic "${topic}" (its topics: ${quotedTopics(groupTopics)})`,
    );
  }
}
