import {
  type Admin,
  AssignerProtocol,
  type ConsumerGroupDescribeGroup,
  describeConsumerGroups,
  GROUP_ID_NOT_FOUND,
  type GroupDescription,
} from '../client/kafkajs.js';
import type { KafkaGroupMember, KafkaGroupOffsets } from './kafka-status.types.js';

export type DescribedGroup = Pick<KafkaGroupOffsets, 'state' | 'groupProtocol' | 'groupMembers' | 'members'>;

/**
 * The coordinator's view of the group. DescribeGroups as kafkajs speaks it (v0-v2) answers a group of the consumer
 * group protocol (KIP-848) with no error, state Dead, protocol type "" and no members: such a group (classic members
 * in it included) is described by ConsumerGroupDescribe instead, which answers GROUP_ID_NOT_FOUND for a group that
 * does not exist (or is classic). A broker without ConsumerGroupDescribe (before Kafka 3.7) has no such groups in
 * practice; a group it lists though it describes it Dead is reported of the consumer protocol, state unknown.
 */
export async function describeGroup(admin: Admin, groupId: string): Promise<DescribedGroup> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups.find((g) => g.groupId === groupId);
  if (!group) return { state: null, groupProtocol: null, groupMembers: null, members: [] };
  if (group.state !== 'Dead') {
    const members = describedMembers(group.members);
    return { state: group.state, groupProtocol: 'classic', groupMembers: members.length, members };
  }
  const consumer = await describeConsumerGroups(admin, [groupId]);
  if (consumer === null) {
    const { groups: listed } = await admin.listGroups();
    return listed.some((g) => g.groupId === groupId)
      ? { state: null, groupProtocol: 'consumer', groupMembers: null, members: [] }
      : { state: 'Dead', groupProtocol: null, groupMembers: 0, members: [] };
  }
  const described = consumer.groups.find((g) => g.groupId === groupId);
  if (!described || described.errorCode === GROUP_ID_NOT_FOUND) {
    return { state: 'Dead', groupProtocol: null, groupMembers: 0, members: [] };
  }
  const members = consumerGroupMembers(described);
  return { state: described.groupState, groupProtocol: 'consumer', groupMembers: members.length, members };
}

function consumerGroupMembers(group: ConsumerGroupDescribeGroup): KafkaGroupMember[] {
  return group.members.map(({ memberId, clientId, clientHost, assignment, memberType }) => ({
    memberId,
    clientId,
    clientHost,
    assignment,
    protocol: memberType,
  }));
}

function describedMembers(members: GroupDescription['members']): KafkaGroupMember[] {
  return members.map(({ memberId, clientId, clientHost, memberAssignment }) => ({
    memberId,
    clientId,
    clientHost,
    assignment: decodeAssignment(memberAssignment),
    protocol: 'classic' as const,
  }));
}

/** Members of other clients may use assignment bytes of another protocol: what cannot be decoded is empty. */
function decodeAssignment(bytes: Buffer): Record<string, number[]> {
  if (bytes.length === 0) return {};
  try {
    return AssignerProtocol.MemberAssignment.decode(bytes)?.assignment ?? {};
  } catch {
    return {};
  }
}
