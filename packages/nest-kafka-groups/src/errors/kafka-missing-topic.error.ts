import { KafkaGroupsError } from './kafka-groups.error.js';
import { plural, quotedTopics } from './topic-names.js';

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
        `${plural(topics, 'does', 'do')} not exist and topic creation is off: create ` +
        `${plural(topics, 'it', 'them')}, or set topics: { create: true } in KafkaModule.forRoot, forFeature ` +
        `or @KafkaHandler (the group starts as soon as ${plural(topics, 'it exists', 'they exist')})` +
        (hidden.length === 0
          ? ''
          : `; ${quotedTopics(hidden)} ${plural(hidden, 'is', 'are')} hidden from ${principal} without ` +
            `DESCRIBE (whether ${plural(hidden, 'it exists', 'they exist')} is not known): grant DESCRIBE`),
    );
  }
}
