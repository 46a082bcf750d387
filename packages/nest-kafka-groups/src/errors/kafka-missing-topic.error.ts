import { KafkaGroupsError } from './kafka-groups.error.js';

/** A topic a consumer group needs does not exist and topic creation is off. The message names both. */
export class KafkaMissingTopicError extends KafkaGroupsError {
  constructor(
    readonly topics: readonly string[],
    readonly groupId: string,
  ) {
    super(
      `Consumer group "${groupId}" needs ${topics.map((t) => `"${t}"`).join(', ')}, which ` +
        `${topics.length === 1 ? 'does' : 'do'} not exist and topic creation is off: create ` +
        `${topics.length === 1 ? 'it' : 'them'}, or set topics: { create: true } in KafkaModule.forRoot, forFeature ` +
        `or @KafkaHandler (the group starts as soon as ${topics.length === 1 ? 'it exists' : 'they exist'})`,
    );
  }
}
