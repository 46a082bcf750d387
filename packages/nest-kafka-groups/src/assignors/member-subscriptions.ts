import { AssignerProtocol, type GroupMember, type GroupMemberAssignment } from '../client/kafkajs.js';

/** A member and the topics it subscribed to, decoded from its JoinGroup metadata (any client's, version 0+). */
export interface MemberSubscription {
  memberId: string;
  /** A static member's group.instance.id (JoinGroup v5+); Java's assignors order static members first by it. */
  groupInstanceId?: string;
  topics: string[];
}

/** Partition counts per topic, as the assigning leader knows them. */
export type PartitionCounts = ReadonlyMap<string, number>;

/** topic -> partitions, per member id; every member of the group has an entry, even an empty one. */
export type Assignment = Map<string, Record<string, number[]>>;

/** Topics of one member's subscription; metadata that cannot be decoded counts as no subscription. */
function decodeTopics(memberMetadata: Buffer): string[] {
  try {
    // kafkajs's decode never returns null (its typing allows it; a null would land in the catch) and reads a null
    // topic array (length -1) as [].
    return AssignerProtocol.MemberMetadata.decode(memberMetadata)!.topics;
  } catch {
    return [];
  }
}

/** kafkajs passes the JoinGroup response's members on as they are: version 5 adds groupInstanceId (null if dynamic). */
type JoinedMember = GroupMember & { groupInstanceId?: string | null };

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Java's member order (AbstractPartitionAssignor.MemberInfo): static members first, by group.instance.id, then
 * dynamic members by member id. Range and roundrobin deal in this order, so both leaders assign alike.
 */
export function compareMembers(a: MemberSubscription, b: MemberSubscription): number {
  if (a.groupInstanceId !== undefined && b.groupInstanceId !== undefined) {
    return compareStrings(a.groupInstanceId, b.groupInstanceId);
  }
  if (a.groupInstanceId !== undefined) return -1;
  if (b.groupInstanceId !== undefined) return 1;
  return compareStrings(a.memberId, b.memberId);
}

export function decodeSubscriptions(members: JoinedMember[]): MemberSubscription[] {
  return members
    .map(({ memberId, memberMetadata, groupInstanceId }) => ({
      memberId,
      ...(groupInstanceId != null ? { groupInstanceId } : {}),
      topics: decodeTopics(memberMetadata),
    }))
    .sort(compareMembers);
}

export function subscribedTopics(subscriptions: MemberSubscription[]): string[] {
  return [...new Set(subscriptions.flatMap((s) => s.topics))].sort();
}

export function emptyAssignment(subscriptions: MemberSubscription[]): Assignment {
  return new Map(subscriptions.map((s) => [s.memberId, {}]));
}

export function addPartition(
  assignment: Assignment,
  memberId: string,
  topic: string,
  partition: number,
): void {
  const topics = assignment.get(memberId)!;
  (topics[topic] ??= []).push(partition);
}

/** Version 0 encodings: version 1 makes Java expect owned partitions and fail. */
export function encodeAssignment(assignment: Assignment): GroupMemberAssignment[] {
  return [...assignment].map(([memberId, topics]) => ({
    memberId,
    memberAssignment: AssignerProtocol.MemberAssignment.encode({
      version: 0,
      assignment: topics,
      userData: Buffer.alloc(0),
    }),
  }));
}

export function encodeSubscription(topics: string[]): Buffer {
  return AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) });
}
