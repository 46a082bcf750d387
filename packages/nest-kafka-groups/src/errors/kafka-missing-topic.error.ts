import { KafkaGroupsError } from './kafka-groups.error.js';
import { quotedTopics } from './topic-names.js';

/**
 * A topic a consumer group needs does not exist and topic creation is off. The message names both, and the topics
 * that, hidden from the principal without DESCRIBE, may exist or not (`hidden`).
 */
export class KafkaMissingTopicError extends KafkaGroupsError {
  constructor(
    readonly topics: readonly string[],
    readonly groupId: string,
    readonly hidden: readonly string[] = [],
    principal?: string,
  ) {
    super(
      `Consumer group "${groupId}" needs ${quotedTopics(topics)}, which ` +
        `${topics.length === 1 ? 'does' : 'do'} not exist and topic creation is off: create ` +
        `${topics.length === 1 ? 'it' : 'them'}, or set topics: { create: true } in KafkaModule.forRoot, forFeature ` +
        `or @KafkaHandler (the group starts as soon as ${topics.length === 1 ? 'it exists' : 'they exist'})` +
        (hidden.length === 0
          ? ''
          : `; ${quotedTopics(hidden)} ${hidden.length === 1 ? 'is' : 'are'} hidden from ${principal} without ` +
            `DESCRIBE (whether ${hidden.length === 1 ? 'it exists' : 'they exist'} is not known): grant DESCRIBE`),
    );
  }
}
