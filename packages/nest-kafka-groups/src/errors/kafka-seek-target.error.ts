import { KafkaGroupsError } from './kafka-groups.error.js';

/** A seek target that cannot be applied: the message names the group, the field and what is wrong with it. */
export class KafkaSeekTargetError extends KafkaGroupsError {
  constructor(
    readonly groupId: string,
    readonly field: string,
    problem: string,
  ) {
    super(`Cannot seek consumer group "${groupId}": ${field} ${problem}`);
  }
}
