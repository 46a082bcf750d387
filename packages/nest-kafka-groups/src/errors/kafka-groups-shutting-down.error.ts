import { KafkaGroupsError } from './kafka-groups.error.js';

/** A start or seek came after the application began to shut down: the group stays stopped. */
export class KafkaGroupsShuttingDownError extends KafkaGroupsError {
  constructor(
    readonly groupId: string,
    readonly operation: 'start' | 'seek',
  ) {
    super(`Cannot ${operation} consumer group "${groupId}": the application is shutting down`);
  }
}
