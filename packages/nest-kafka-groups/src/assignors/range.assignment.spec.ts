import { describe, expect, test } from '@jest/globals';
import type { Assignment, MemberSubscription } from './member-subscriptions.js';
import { rangeAssignment } from './range.assignment.js';

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

describe('rangeAssignment (Java RangeAssignor)', () => {
  test('javadoc example: C0, C1 on t0, t1 with 3 partitions each', () => {
    const assignment = rangeAssignment(
      [sub('C0', 't0', 't1'), sub('C1', 't0', 't1')],
      new Map([
        ['t0', 3],
        ['t1', 3],
      ]),
    );
    expect(javaNotation(assignment)).toEqual({
      C0: ['t0p0', 't0p1', 't1p0', 't1p1'],
      C1: ['t0p2', 't1p2'],
    });
  });

  test('partitions divide evenly: contiguous equal ranges', () => {
    const assignment = rangeAssignment([sub('a', 't'), sub('b', 't'), sub('c', 't')], new Map([['t', 6]]));
    expect(Object.fromEntries(assignment)).toEqual({ a: { t: [0, 1] }, b: { t: [2, 3] }, c: { t: [4, 5] } });
  });

  test('the first partitions % members members take one extra', () => {
    const assignment = rangeAssignment([sub('a', 't'), sub('b', 't'), sub('c', 't')], new Map([['t', 8]]));
    expect(Object.fromEntries(assignment)).toEqual({
      a: { t: [0, 1, 2] },
      b: { t: [3, 4, 5] },
      c: { t: [6, 7] },
    });
  });

  test('per topic, only its subscribers share it', () => {
    const assignment = rangeAssignment(
      [sub('C0', 't0'), sub('C1', 't0', 't1'), sub('C2', 't1')],
      new Map([
        ['t0', 3],
        ['t1', 2],
      ]),
    );
    expect(javaNotation(assignment)).toEqual({
      C0: ['t0p0', 't0p1'],
      C1: ['t0p2', 't1p0'],
      C2: ['t1p1'],
    });
  });

  test('more members than partitions: every member has an entry, idle ones empty', () => {
    const assignment = rangeAssignment(
      [sub('m1', 't'), sub('m2', 't'), sub('m3', 't'), sub('m4', 't')],
      new Map([['t', 2]]),
    );
    expect([...assignment.keys()]).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(Object.fromEntries(assignment)).toEqual({ m1: { t: [0] }, m2: { t: [1] }, m3: {}, m4: {} });
  });

  test('a topic with no known partitions assigns nothing but keeps every member', () => {
    const assignment = rangeAssignment([sub('a', 'unknown'), sub('b', 'unknown')], new Map());
    expect(Object.fromEntries(assignment)).toEqual({ a: {}, b: {} });
  });

  test('every partition is assigned exactly once', () => {
    const subscriptions = [sub('a', 'x', 'y'), sub('b', 'y', 'z'), sub('c', 'x', 'z'), sub('d', 'y')];
    const counts = new Map([
      ['x', 5],
      ['y', 7],
      ['z', 1],
    ]);
    const owned = Object.values(javaNotation(rangeAssignment(subscriptions, counts)))
      .flat()
      .sort();
    const expected = [...counts].flatMap(([t, n]) => Array.from({ length: n }, (_, p) => `${t}p${p}`)).sort();
    expect(owned).toEqual(expected);
  });

  test('no members, empty assignment', () => {
    expect(rangeAssignment([], new Map([['t', 3]])).size).toBe(0);
  });
});
