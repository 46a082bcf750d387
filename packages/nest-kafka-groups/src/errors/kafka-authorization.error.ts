import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * The broker's ACLs deny an operation: "not authorized to read topic live-flight-airnav in group airnav as user
 * svc-flights". Not retried in a loop: the member (or partition) stops and reports it until the ACLs change.
 */
export class KafkaAuthorizationError extends KafkaGroupsError {
  constructor(
    readonly operation: string,
    readonly resource: string,
    readonly principal: string,
    cause?: unknown,
    hint?: string,
  ) {
    super(`not authorized to ${operation} ${resource} as ${principal}${hint ? ` (${hint})` : ''}`, { cause });
  }
}
