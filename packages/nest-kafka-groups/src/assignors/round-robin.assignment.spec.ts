import { describe, expect, test } from '@jest/globals';
import type { Assignment, MemberSubscription } from './member-subscriptions.js';
import { roundRobinAssignment } from './round-robin.assignment.js';

/** Java's notation: member -> ['t0p0', 't0p1', ...], topics in assignment order. */
function javaNotation(assignment: Assignment): Record<string, string[]> {
  return Object.fromEntries(
    [...assignment].map(([member, topics]) => [
      member,
      Object.entries(topics).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}p${p}`)),
    ]),
  );
}

const sub = (memberId: string, ...topics: string[]): MemberSubscription => ({ memberId, topics });

describe('roundRobinAssignment (Java RoundRobinAssignor)', () => {
  test('javadoc example: C0, C1 on t0, t1 with 3 partitions each', () => {
    const assignment = roundRobinAssignment(
      [sub('C0', 't0', 't1'), sub('C1', 't0', 't1')],
      new Map([
        ['t0', 3],
        ['t1', 3],
      ]),
    );
    expect(javaNotation(assignment)).toEqual({
      C0: ['t0p0', 't0p2', 't1p1'],
      C1: ['t0p1', 't1p0', 't1p2'],
    });
  });

  test('javadoc example with unequal subscriptions skips non-subscribers', () => {
    const assignment = roundRobinAssignment(
      [sub('C0', 't0'), sub('C1', 't0', 't1'), sub('C2', 't0', 't1', 't2')],
      new Map([
        ['t0', 1],
        ['t1', 2],
        ['t2', 3],
      ]),
    );
    expect(javaNotation(assignment)).toEqual({
      C0: ['t0p0'],
      C1: ['t1p0'],
      C2: ['t1p1', 't2p0', 't2p1', 't2p2'],
    });
  });

  test('topics are laid out in name order, whatever the subscription order', () => {
    const assignment = roundRobinAssignment(
      [sub('C0', 'b', 'a'), sub('C1', 'b', 'a')],
      new Map([
        ['b', 1],
        ['a', 3],
      ]),
    );
    expect(javaNotation(assignment)).toEqual({
      C0: ['ap0', 'ap2'],
      C1: ['ap1', 'bp0'],
    });
  });

  test('more members than partitions: every member has an entry, idle ones empty', () => {
    const assignment = roundRobinAssignment(
      [sub('a', 't'), sub('b', 't'), sub('c', 't')],
      new Map([['t', 1]]),
    );
    expect([...assignment.keys()]).toEqual(['a', 'b', 'c']);
    expect(Object.fromEntries(assignment)).toEqual({ a: { t: [0] }, b: {}, c: {} });
  });

  test('a member subscribed to nothing still has an (empty) entry', () => {
    const assignment = roundRobinAssignment([sub('a'), sub('b', 't')], new Map([['t', 2]]));
    expect(Object.fromEntries(assignment)).toEqual({ a: {}, b: { t: [0, 1] } });
  });

  test('no members, empty assignment', () => {
    expect(roundRobinAssignment([], new Map([['t', 3]])).size).toBe(0);
  });
});
