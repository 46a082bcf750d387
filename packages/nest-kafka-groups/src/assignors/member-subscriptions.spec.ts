import { describe, expect, test } from '@jest/globals';
import kafkajs from 'kafkajs';
import {
  type Assignment,
  compareMembers,
  decodeSubscriptions,
  emptyAssignment,
  encodeAssignment,
  encodeSubscription,
  subscribedTopics,
} from './member-subscriptions.js';
import { rangeAssignment } from './range.assignment.js';
import { roundRobinAssignment } from './round-robin.assignment.js';

const { AssignerProtocol } = kafkajs;

function int16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeInt16BE(value);
  return buffer;
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

const member = (memberId: string, ...topics: string[]) => ({
  memberId,
  memberMetadata: encodeSubscription(topics),
});

describe('encodeSubscription / decodeSubscriptions', () => {
  test('round-trip the topics of every member', () => {
    expect(decodeSubscriptions([member('a', 't0', 't1'), member('b', 't2')])).toEqual([
      { memberId: 'a', topics: ['t0', 't1'] },
      { memberId: 'b', topics: ['t2'] },
    ]);
  });

  test('encode a version 0 subscription kafkajs (and Java) can read', () => {
    const decoded = AssignerProtocol.MemberMetadata.decode(encodeSubscription(['orders']));
    expect(decoded).toEqual({ version: 0, topics: ['orders'], userData: Buffer.alloc(0) });
    expect(encodeSubscription(['orders']).readInt16BE(0)).toBe(0);
  });

  test('decode subscriptions encoded by kafkajs itself', () => {
    const memberMetadata = AssignerProtocol.MemberMetadata.encode({
      version: 1,
      topics: ['x'],
      userData: Buffer.from('u'),
    });
    expect(decodeSubscriptions([{ memberId: 'k', memberMetadata }])).toEqual([
      { memberId: 'k', topics: ['x'] },
    ]);
  });

  test('members come out sorted by id regardless of input order', () => {
    const decoded = decodeSubscriptions([
      member('consumer-2', 't'),
      member('consumer-10', 't'),
      member('consumer-1', 't'),
    ]);
    expect(decoded.map((s) => s.memberId)).toEqual(['consumer-1', 'consumer-10', 'consumer-2']);
  });

  test("static members (group.instance.id) come first, by instance id, as in Java's MemberInfo order", () => {
    const decoded = decodeSubscriptions([
      member('a', 't'),
      { ...member('z', 't'), groupInstanceId: 'i2' },
      { ...member('b', 't'), groupInstanceId: 'i1' },
      { ...member('c', 't'), groupInstanceId: null },
    ]);
    expect(decoded.map((s) => [s.memberId, s.groupInstanceId])).toEqual([
      ['b', 'i1'],
      ['z', 'i2'],
      ['a', undefined],
      ['c', undefined],
    ]);
    const counts = new Map([['t', 4]]);
    expect(Object.fromEntries(rangeAssignment(decoded, counts))).toEqual({
      b: { t: [0] },
      z: { t: [1] },
      a: { t: [2] },
      c: { t: [3] },
    });
  });

  test('sorting by id makes the assignment independent of member order', () => {
    const members = [member('C1', 't0', 't1'), member('C0', 't0', 't1')];
    const counts = new Map([
      ['t0', 3],
      ['t1', 3],
    ]);
    const forward = rangeAssignment(decodeSubscriptions(members), counts);
    const backward = rangeAssignment(decodeSubscriptions([...members].reverse()), counts);
    expect(Object.fromEntries(forward)).toEqual({ C0: { t0: [0, 1], t1: [0, 1] }, C1: { t0: [2], t1: [2] } });
    expect(Object.fromEntries(backward)).toEqual(Object.fromEntries(forward));
    expect(Object.fromEntries(roundRobinAssignment(decodeSubscriptions(members), counts))).toEqual({
      C0: { t0: [0, 2], t1: [1] },
      C1: { t0: [1], t1: [0, 2] },
    });
  });

  test("decode a Java consumer's version 1 subscription: null user data, owned partitions after the topics", () => {
    const string = (s: string) => Buffer.concat([int16(Buffer.byteLength(s)), Buffer.from(s)]);
    const memberMetadata = Buffer.concat([
      int16(1), // version
      int32(2), // topics
      string('orders'),
      string('payments'),
      int32(-1), // user data: null
      int32(1), // owned partitions: one topic
      string('orders'),
      int32(2),
      int32(0),
      int32(3),
    ]);
    expect(decodeSubscriptions([{ memberId: 'java-1', memberMetadata }])).toEqual([
      { memberId: 'java-1', topics: ['orders', 'payments'] },
    ]);
  });
});

describe('undecodable metadata', () => {
  test('counts as no subscription: the member is kept, with no topics, and the others are assigned', () => {
    const subscriptions = decodeSubscriptions([
      { memberId: 'broken', memberMetadata: Buffer.from([0, 0, 0]) },
      { memberId: 'empty', memberMetadata: Buffer.alloc(0) },
      member('ok', 't'),
    ]);
    expect(subscriptions).toEqual([
      { memberId: 'broken', topics: [] },
      { memberId: 'empty', topics: [] },
      { memberId: 'ok', topics: ['t'] },
    ]);
    expect(Object.fromEntries(rangeAssignment(subscriptions, new Map([['t', 2]])))).toEqual({
      broken: {},
      empty: {},
      ok: { t: [0, 1] },
    });
  });
});

describe('compareMembers', () => {
  const dynamic = (memberId: string) => ({ memberId, topics: [] });
  const fixed = (memberId: string, groupInstanceId: string) => ({ memberId, groupInstanceId, topics: [] });

  test.each([
    ['dynamic by member id', dynamic('a'), dynamic('b')],
    ['static by instance id, whatever the member ids', fixed('z', 'i1'), fixed('a', 'i2')],
    ['static before dynamic', fixed('z', 'i9'), dynamic('a')],
  ])('%s: negative one way, positive the other, zero against itself', (_label, first, second) => {
    expect(compareMembers(first, second)).toBeLessThan(0);
    expect(compareMembers(second, first)).toBeGreaterThan(0);
    expect(compareMembers(first, { ...first })).toBe(0);
    expect(compareMembers(second, { ...second })).toBe(0);
  });
});

describe('subscribedTopics', () => {
  test('the union of all subscriptions, deduplicated and sorted', () => {
    expect(
      subscribedTopics([
        { memberId: 'a', topics: ['t2', 't0'] },
        { memberId: 'b', topics: ['t0', 't1'] },
      ]),
    ).toEqual(['t0', 't1', 't2']);
  });
});

describe('encodeAssignment', () => {
  test('one version 0 entry per member that kafkajs MemberAssignment decodes, idle members included', () => {
    const assignment: Assignment = emptyAssignment([
      { memberId: 'busy', topics: ['t0', 't1'] },
      { memberId: 'idle', topics: ['t0'] },
    ]);
    assignment.get('busy')!.t0 = [0, 1];
    assignment.get('busy')!.t1 = [2];

    const encoded = encodeAssignment(assignment);
    expect(encoded.map((e) => e.memberId)).toEqual(['busy', 'idle']);
    const decoded = Object.fromEntries(
      encoded.map(({ memberId, memberAssignment }) => [
        memberId,
        AssignerProtocol.MemberAssignment.decode(memberAssignment),
      ]),
    );
    expect(decoded.busy).toEqual({
      version: 0,
      assignment: { t0: [0, 1], t1: [2] },
      userData: Buffer.alloc(0),
    });
    expect(decoded.idle).toEqual({ version: 0, assignment: {}, userData: Buffer.alloc(0) });
    // Version 0: Java's ConsumerProtocol would expect owned partitions in a version 1 assignment.
    for (const { memberAssignment } of encoded) expect(memberAssignment.readInt16BE(0)).toBe(0);
  });

  test('an empty group encodes to no entries', () => {
    expect(encodeAssignment(new Map())).toEqual([]);
  });
});
