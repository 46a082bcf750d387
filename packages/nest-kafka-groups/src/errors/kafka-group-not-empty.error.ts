import { KafkaGroupsError } from './kafka-groups.error.js';

/** A member of the group that is still in it, as the group coordinator describes it. */
export interface KafkaGroupMemberDescription {
  memberId: string;
  clientId: string;
  clientHost: string;
}

/**
 * A seek found members of the group outside this process (or members of this process that did not leave in
 * time): the broker accepts new offsets only for an Empty group. The message names every member still in it.
 */
export class KafkaGroupNotEmptyError extends KafkaGroupsError {
  constructor(
    readonly groupId: string,
    readonly state: string,
    readonly members: readonly KafkaGroupMemberDescription[],
    readonly waitedMs: number,
  ) {
    super(
      `Cannot seek consumer group "${groupId}": it is not Empty after ${waitedMs} ms (state ${state}, ` +
        `${members.length} member(s) still in it: ` +
        members.map((m) => `${m.memberId} (client "${m.clientId}" on ${m.clientHost})`).join(', ') +
        '); stop those consumers (or wait for their session timeout) and seek again',
    );
  }
}
