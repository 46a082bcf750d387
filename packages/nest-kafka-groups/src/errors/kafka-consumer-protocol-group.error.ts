import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * A seek found the group run by the consumer group protocol (KIP-848: a member with `group.protocol=consumer` joined
 * it). The DescribeGroups versions kafkajs speaks describe such a group as Dead with no members, so the library
 * cannot tell whether another process holds its partitions, and kafkajs's offset commit joins it as a classic
 * member: the offsets of partitions another member holds would not move, while the seek reported them moved.
 */
export class KafkaConsumerProtocolGroupError extends KafkaGroupsError {
  constructor(readonly groupId: string) {
    super(
      `Cannot seek consumer group "${groupId}": the broker lists it but describes it as Dead to this client, as it ` +
        'does a group of the consumer group protocol (KIP-848: a member with group.protocol=consumer joined it), ' +
        'whose members kafkajs cannot list; stop the consumers that use group.protocol=consumer (the group turns ' +
        'classic again when the last of them leaves) and seek again',
    );
  }
}
