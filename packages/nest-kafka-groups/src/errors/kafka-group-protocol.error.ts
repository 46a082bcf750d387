import { KafkaGroupsError } from './kafka-groups.error.js';

/** What the group's description said about the members that are in it, when it could be read. */
export interface KafkaGroupProtocolInUse {
  /** The assignment protocol the group settled on (e.g. "cooperative-sticky"), or '' while it rebalances. */
  protocol: string;
  /** The client ids of its members. */
  clientIds: readonly string[];
}

/**
 * A member could not join its consumer group: the members already in it advertise no assignment protocol this
 * member knows (the broker's INCONSISTENT_GROUP_PROTOCOL). Typically another client configured for cooperative
 * rebalancing only, which kafkajs cannot do. The member keeps trying to join (with `restartBackoff`), so it joins
 * once the other members leave or advertise an eager protocol too.
 */
export class KafkaGroupProtocolError extends KafkaGroupsError {
  constructor(
    readonly groupId: string,
    /** The protocols this member advertises, in order of preference. */
    readonly advertised: readonly string[],
    /** The group's protocol and members, or undefined when the group could not be described. */
    readonly inUse: KafkaGroupProtocolInUse | undefined,
    cause?: unknown,
  ) {
    const theirs = inUse?.protocol
      ? `its members (${inUse.clientIds.join(', ') || 'none listed'}) use assignment protocol "${inUse.protocol}"`
      : 'its members advertise none of these';
    super(
      `Cannot join consumer group "${groupId}" with protocols ${advertised.join(', ')}: ${theirs}. ` +
        'Members of a shared group need one eager protocol in common; kafkajs cannot rebalance cooperatively, so ' +
        'configure the other clients with range or roundrobin (Java/librdkafka partition.assignment.strategy, ' +
        'classic group protocol) next to or instead of cooperative-sticky',
      { cause },
    );
  }
}
