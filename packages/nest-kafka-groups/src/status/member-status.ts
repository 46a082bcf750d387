import type { ConsumerMember } from '../server/consumer-member.js';
import type { KafkaMemberStatus } from './kafka-status.types.js';

/** A snapshot of one member of this process (copies: nothing in it changes with the member). */
export function memberStatus(member: ConsumerMember): KafkaMemberStatus {
  return {
    memberId: member.memberId ?? null,
    state: member.state,
    assignment: member.state === 'crashed' || member.state === 'stopped' ? {} : { ...member.assignment },
    counts: { ...member.counts },
    stoppedPartitions: [...member.stoppedPartitions].map(([key, reason]) => {
      const at = key.lastIndexOf(':');
      return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)), reason };
    }),
    // A coordinator that stopped answering (health's problem, while it lasts) matters more than the last error.
    lastError: member.coordinatorProblem ?? member.lastError ?? null,
  };
}
