import { describe, expect, it } from '@jest/globals';
import { CoordinatorOutage } from './coordinator-outage.js';

const SESSION = 10_000;
const notAvailable = new Error('The coordinator is not available');

function outage() {
  const lines: { level: 'warn' | 'log'; message: string }[] = [];
  const logger = {
    warn: (message: unknown) => void lines.push({ level: 'warn', message: String(message) }),
    log: (message: unknown) => void lines.push({ level: 'log', message: String(message) }),
  };
  const tracker = new CoordinatorOutage(
    () => ({
      groupId: 'orders',
      memberId: 'm-1',
      coordinator: 'broker 3 at 127.0.0.1:9094',
      sessionTimeout: SESSION,
    }),
    logger,
    30_000,
  );
  return { tracker, lines };
}

/** Heartbeats failing every 100 ms from `from` to `to` (epoch ms), the last answer at `answeredAt`. */
function failHeartbeats(tracker: CoordinatorOutage, answeredAt: number, from: number, to: number): void {
  for (let now = from; now <= to; now += 100) tracker.heartbeatFailed(notAvailable, answeredAt, now);
}

describe('CoordinatorOutage: what a member tells when its group coordinator does not answer', () => {
  it('says nothing about a short outage (a coordinator that moved and was found again)', () => {
    const { tracker, lines } = outage();
    failHeartbeats(tracker, 0, 400, 4_000);
    tracker.commitFailed(notAvailable, 1_000);
    expect(tracker.problem(4_000)).toBeUndefined();
    tracker.heartbeatAnswered(4_100);
    tracker.commitSucceeded(4_200);
    expect(lines).toEqual([]);
    expect(tracker.problem(4_300)).toBeUndefined();
  });

  it('one WARN naming the group, the member and the coordinator at half the session timeout, a summary every 30 s', () => {
    const { tracker, lines } = outage();
    failHeartbeats(tracker, 0, 400, 4_900);
    expect(lines).toEqual([]);
    failHeartbeats(tracker, 0, 5_000, 34_900);
    expect(lines).toHaveLength(1);
    expect(lines[0].level).toBe('warn');
    expect(lines[0].message).toMatch(
      /^Group "orders" member m-1: the group coordinator \(broker 3 at 127\.0\.0\.1:9094\) has not answered for 5 s \(47 heartbeat\(s\) and 0 commit\(s\) failed, last: The coordinator is not available\)/,
    );
    expect(lines[0].message).toMatch(
      /from 10000 ms without an answer \(sessionTimeout\) no record is handed/,
    );
    failHeartbeats(tracker, 0, 35_000, 65_000);
    expect(lines.slice(1).map((l) => l.message)).toEqual([
      'Group "orders" member m-1: the group coordinator (broker 3 at 127.0.0.1:9094) still has not answered after ' +
        '35 s (347 heartbeat(s) and 0 commit(s) failed, last: The coordinator is not available)',
      'Group "orders" member m-1: the group coordinator (broker 3 at 127.0.0.1:9094) still has not answered after ' +
        '65 s (647 heartbeat(s) and 0 commit(s) failed, last: The coordinator is not available)',
    ]);
  });

  it('a problem for health from a whole session timeout without an answer, none once it answers (one LOG line)', () => {
    const { tracker, lines } = outage();
    failHeartbeats(tracker, 1_000, 1_400, 10_900);
    expect(tracker.problem(10_999)).toBeUndefined();
    expect(tracker.problem(11_000)).toMatch(
      /^the group coordinator \(broker 3 at 127\.0\.0\.1:9094\) has not answered for 10 s, longer than the session timeout \(10000 ms\): no record is handed to the handlers until it answers, and nothing is committed \(last: The coordinator is not available\)$/,
    );
    tracker.heartbeatAnswered(20_000);
    expect(tracker.problem(20_000)).toBeUndefined();
    expect(lines.at(-1)).toEqual({
      level: 'log',
      message:
        'Group "orders" member m-1: the group coordinator (broker 3 at 127.0.0.1:9094) answers again after 19 s ' +
        '(96 heartbeat(s) and 0 commit(s) failed); commits and handling resume',
    });
    // A later outage is told anew.
    failHeartbeats(tracker, 30_000, 30_100, 36_000);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(2);
  });

  it('commits failing while heartbeats are answered: reported, and not over until a commit succeeds', () => {
    const { tracker, lines } = outage();
    for (let now = 1_000; now <= 12_000; now += 1_000) {
      tracker.commitFailed(notAvailable, now);
      tracker.heartbeatAnswered(now);
    }
    expect(lines).toHaveLength(1);
    expect(lines[0].message).toMatch(
      /has failed every commit for 5 s \(0 heartbeat\(s\) and 6 commit\(s\) failed/,
    );
    expect(lines[0].message).not.toMatch(/no record is handed/);
    expect(tracker.problem(12_000)).toMatch(
      /^commits to the group coordinator \(broker 3 at 127\.0\.0\.1:9094\) have failed for 11 s/,
    );
    tracker.commitSucceeded(13_000);
    expect(tracker.problem(13_000)).toBeUndefined();
    expect(lines.at(-1)?.message).toMatch(
      /answers again after 12 s \(0 heartbeat\(s\) and 12 commit\(s\) failed\)/,
    );
  });
});
