import type { KafkaStatus } from '@nestjs/microservices';
import type { MemberState } from './consumer-member.js';

/**
 * What KafkaGroupsServer's `status` observable emits: Nest's KafkaStatus values, so code written against
 * ServerKafka's `status` keeps working. See the README, "Status".
 */
export type KafkaGroupsStatus = `${KafkaStatus}`;

/** What the aggregate reads of one group of this process. */
export interface GroupStatusView {
  /** The group was started (at start-up or by KafkaGroups.start) and not stopped since. */
  running: boolean;
  members: readonly { state: MemberState; failure?: 'unreachable' | 'crashed' }[];
}

/** Worst first: the aggregate is the worst status of any member of a running group. */
const SEVERITY: readonly KafkaGroupsStatus[] = ['crashed', 'disconnected', 'rebalancing', 'connected'];

/**
 * The status of a server running these groups: `stopped` when no group runs; otherwise the worst of the running
 * groups' members, where a member that joined is `connected`, one whose brokers cannot be reached `disconnected`,
 * one whose consumer crashed for good (recreated with backoff) `crashed`, one rejoining `rebalancing`, and one
 * not connected yet (starting, or waiting for its topics) `disconnected`.
 */
export function groupsStatus(groups: readonly GroupStatusView[]): KafkaGroupsStatus {
  let worst = SEVERITY.length;
  for (const group of groups) {
    if (!group.running) continue;
    for (const member of group.members) worst = Math.min(worst, SEVERITY.indexOf(memberStatus(member)));
  }
  return worst === SEVERITY.length ? 'stopped' : SEVERITY[worst];
}

function memberStatus(member: GroupStatusView['members'][number]): KafkaGroupsStatus {
  if (member.state === 'joined') return 'connected';
  if (member.failure === 'unreachable') return 'disconnected';
  if (member.failure === 'crashed') return 'crashed';
  if (member.state === 'rebalancing') return 'rebalancing';
  return 'disconnected';
}
