import { describe, expect, it } from '@jest/globals';
import type { ConsumerMember } from '../server/consumer-member.js';
import { memberStatus } from './member-status.js';

/** The fields memberStatus reads, as a joined member has them. */
function member(fields: { lastError?: string; coordinatorProblem?: string }): ConsumerMember {
  return {
    memberId: 'm-1',
    state: 'joined',
    assignment: { orders: [0] },
    counts: { processed: 0, failed: 0, deadLettered: 0 },
    stoppedPartitions: new Map(),
    ...fields,
  } as unknown as ConsumerMember;
}

describe('memberStatus', () => {
  it("shows a coordinator problem in lastError while it lasts (health's reason), before the member's last error", () => {
    const problem = 'the group coordinator (broker 1 at 127.0.0.1:9092) has not answered for 6 s';
    expect(memberStatus(member({ coordinatorProblem: problem })).lastError).toBe(problem);
    expect(memberStatus(member({ coordinatorProblem: problem, lastError: 'earlier' })).lastError).toBe(
      problem,
    );
  });

  it('once the coordinator answers again, lastError is the last error, or null', () => {
    expect(memberStatus(member({ lastError: 'earlier' })).lastError).toBe('earlier');
    expect(memberStatus(member({})).lastError).toBeNull();
  });
});
