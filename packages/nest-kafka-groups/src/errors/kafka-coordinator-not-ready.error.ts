import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * The group coordinator answered a member's JoinGroup or SyncGroup "loading the group" or "not available" for the
 * consumer's whole client retry budget (`clientRetry.retries`, with its backoff). Retriable: kafkajs restarts the
 * consumer, which looks the coordinator up and joins again.
 */
export class KafkaCoordinatorNotReadyError extends KafkaGroupsError {
  readonly retriable = true;

  constructor(
    readonly groupId: string,
    readonly retries: number,
    cause: unknown,
  ) {
    super(
      `Group "${groupId}": the group coordinator was still loading the group or not available after ` +
        `${retries} retries (clientRetry.retries); last answer: ${(cause as Error)?.message ?? String(cause)}`,
      { cause },
    );
  }
}
