import { KafkaGroupsError } from './kafka-groups.error.js';

/** `KafkaGroups` was asked about a consumer group that does not run in this process. The message lists those that do. */
export class KafkaUnknownGroupError extends KafkaGroupsError {
  constructor(
    readonly groupId: string,
    readonly knownGroupIds: readonly string[],
  ) {
    super(
      `No consumer group "${groupId}" runs in this process (` +
        (knownGroupIds.length > 0
          ? `its groups: ${knownGroupIds.map((g) => `"${g}"`).join(', ')})`
          : 'none yet: the groups exist once the application started its microservices)'),
    );
  }
}
