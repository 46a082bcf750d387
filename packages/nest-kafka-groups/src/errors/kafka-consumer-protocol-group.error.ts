import { KafkaGroupsError } from './kafka-groups.error.js';
import type { KafkaGroupMemberDescription } from './kafka-group-not-empty.error.js';

/** A member of a consumer-protocol group, as ConsumerGroupDescribe names it. */
export interface KafkaConsumerProtocolMember extends KafkaGroupMemberDescription {
  /** How it joined: classic (JoinGroup, as this library's members) or consumer (KIP-848); null when unknown. */
  protocol: 'classic' | 'consumer' | null;
}

/**
 * A seek found the group run by the consumer group protocol (KIP-848: a member with `group.protocol=consumer` joined
 * it) and not Empty after waiting for it to empty. kafkajs commits a seek's offsets by joining the group as a classic
 * member, which such a group takes in and assigns with the broker's assignor: the offsets of partitions another member
 * holds would not move while the seek reported them moved. The message names the group's state and every member
 * still in it (null state and no members: the broker lists the group but cannot describe it, before Kafka 3.7).
 */
export class KafkaConsumerProtocolGroupError extends KafkaGroupsError {
  constructor(
    readonly groupId: string,
    readonly state: string | null,
    readonly members: readonly KafkaConsumerProtocolMember[],
    readonly waitedMs: number,
  ) {
    super(
      `Cannot seek consumer group "${groupId}": it runs the consumer group protocol (KIP-848: a member with ` +
        `group.protocol=consumer joined it) and is not empty after ${waitedMs} ms (state ${state ?? 'unknown'}, ` +
        (members.length === 0
          ? 'its members unknown'
          : `${members.length} member(s) still in it: ` +
            members
              .map(
                (m) =>
                  `${m.memberId} (client "${m.clientId}" on ${m.clientHost}, ${m.protocol ?? 'unknown'} protocol)`,
              )
              .join(', ')) +
        '); stop the consumers that use group.protocol=consumer (the group turns classic again when the last of ' +
        'them leaves) and seek again',
    );
  }
}
