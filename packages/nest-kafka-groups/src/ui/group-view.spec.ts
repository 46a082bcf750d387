import { describe, expect, test } from '@jest/globals';
import type { KafkaGroupOffsets } from '../status/kafka-status.types.js';
import {
  connectionSecrets,
  groupView,
  type LocalMember,
  RateMeter,
  type Rates,
  redactSecrets,
} from './group-view.js';

const counts = (processed = 0, failed = 0, deadLettered = 0) => ({ processed, failed, deadLettered });

function local(
  memberId: string | null,
  assignment: Record<string, number[]>,
  extra: Partial<LocalMember> = {},
) {
  const member: LocalMember = {
    memberId,
    state: memberId === null ? 'starting' : 'joined',
    assignment,
    counts: counts(),
    stoppedPartitions: [],
    pausedPartitions: [],
    lastError: null,
    ...extra,
  };
  const rates: Rates = { processedPerSec: null, failedPerSec: null };
  return { member, rates };
}

const offsets = (): KafkaGroupOffsets => ({
  state: 'Stable',
  groupProtocol: 'classic',
  groupMembers: 2,
  partitions: [
    { topic: 't', partition: 0, committedOffset: 5, logEndOffset: 9, lag: 4 },
    { topic: 't', partition: 1, committedOffset: 2, logEndOffset: 3, lag: 1 },
    { topic: 't', partition: 2, committedOffset: null, logEndOffset: 7, lag: 7 },
  ],
  owners: new Map([
    ['t:0', { memberId: 'm-here', clientId: 'svc' }],
    ['t:1', { memberId: 'm-peer', clientId: 'svc' }],
    ['t:2', { memberId: 'm-peer', clientId: 'svc' }],
  ]),
  members: [
    {
      memberId: 'm-peer',
      clientId: 'svc',
      clientHost: '/10.0.0.2',
      assignment: { t: [1, 2] },
      protocol: 'classic',
    },
    {
      memberId: 'm-here',
      clientId: 'svc',
      clientHost: '/10.0.0.1',
      assignment: { t: [0] },
      protocol: 'classic',
    },
  ],
});

describe('groupView', () => {
  test('lists every member the coordinator describes, marks the ones of this process, maps partitions to owners', () => {
    const view = groupView({
      groupId: 'g',
      topics: ['t'],
      clientId: 'svc',
      members: [
        local('m-here', { t: [0] }, { counts: counts(10, 2, 1) }),
        local(null, {}, { counts: counts(3, 0, 0) }),
      ],
      offsets: offsets(),
    });
    expect(view.state).toBe('Stable');
    expect(view.error).toBeNull();
    expect(view.members.map((m) => [m.memberId, m.host, m.local, m.state])).toEqual([
      ['m-here', '/10.0.0.1', true, 'joined'],
      ['m-peer', '/10.0.0.2', false, null],
      [null, null, true, 'starting'],
    ]);
    expect(view.members[1].counts).toBeNull();
    expect(view.partitions.map((p) => [p.partition, p.memberId, p.lag])).toEqual([
      [0, 'm-here', 4],
      [1, 'm-peer', 1],
      [2, 'm-peer', 7],
    ]);
    expect(view.lag).toBe(12);
    expect(view.counts).toEqual(counts(13, 2, 1));
  });

  test('paused and stopped partitions of local members are flagged, a stopped one with its reason', () => {
    const view = groupView({
      groupId: 'g',
      topics: ['t'],
      clientId: 'svc',
      members: [
        local(
          'm-here',
          { t: [0, 1, 2] },
          {
            pausedPartitions: [{ topic: 't', partitions: [1] }],
            stoppedPartitions: [
              { topic: 't', partition: 2, reason: 'dead-letter topic "t-dlt" does not exist' },
            ],
          },
        ),
      ],
      offsets: offsets(),
    });
    expect(view.partitions.map((p) => [p.partition, p.paused, p.stopped])).toEqual([
      [0, false, null],
      [1, true, null],
      [2, true, 'dead-letter topic "t-dlt" does not exist'],
    ]);
    // This process's fresher assignment wins over the coordinator's description.
    expect(view.partitions.every((p) => p.memberId === 'm-here')).toBe(true);
  });

  test('without the broker: the error, this process only, no lag', () => {
    const view = groupView({
      groupId: 'g',
      topics: ['t'],
      clientId: 'svc',
      startProblem: 'topic missing',
      members: [local('m-here', { t: [2, 0] })],
      offsets: { error: 'offsets of group "g": no answer from the broker within 3000 ms' },
    });
    expect(view.state).toBeNull();
    expect(view.error).toMatch(/no answer/);
    expect(view.startProblem).toBe('topic missing');
    expect(view.members).toHaveLength(1);
    expect(view.members[0]).toMatchObject({ memberId: 'm-here', clientId: 'svc', host: null, local: true });
    expect(view.partitions.map((p) => [p.partition, p.lag])).toEqual([
      [0, null],
      [2, null],
    ]);
    expect(view.lag).toBeNull();
  });

  test('group rates add up the members that have one', () => {
    const a = local('a', {});
    const b = local('b', {});
    a.rates = { processedPerSec: 2, failedPerSec: 0.5 };
    b.rates = { processedPerSec: 3, failedPerSec: 0 };
    const view = groupView({
      groupId: 'g',
      topics: [],
      clientId: null,
      members: [a, b],
      offsets: { error: 'x' },
    });
    expect(view.rates).toEqual({ processedPerSec: 5, failedPerSec: 0.5 });
  });
});

describe('RateMeter', () => {
  test('per second between two measurements of the same key; none on the first', () => {
    const meter = new RateMeter();
    const key = {};
    expect(meter.measure(key, 1_000, counts(10, 1))).toEqual({ processedPerSec: null, failedPerSec: null });
    expect(meter.measure(key, 3_000, counts(30, 5))).toEqual({ processedPerSec: 10, failedPerSec: 2 });
    meter.sweep(new Set());
    expect(meter.measure(key, 4_000, counts(40, 5))).toEqual({ processedPerSec: null, failedPerSec: null });
  });
});

describe('secrets', () => {
  test('every string and key has each secret replaced; numbers and structure stay', () => {
    const value = { a: 'auth failed for p4ss!word', list: ['x p4ss!word y', 3], p4ss: { 'p4ss!word': true } };
    expect(redactSecrets(value, ['p4ss!word'])).toEqual({
      a: 'auth failed for (hidden)',
      list: ['x (hidden) y', 3],
      p4ss: { '(hidden)': true },
    });
  });

  test('SASL passwords and AWS secrets, TLS keys (whole and line by line) and passphrases are secrets', () => {
    const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
    const secrets = connectionSecrets({
      sasl: { mechanism: 'scram-sha-512', username: 'svc-flights', password: 'hunter22' },
      ssl: { key: Buffer.from(key), passphrase: 'open sesame', ca: ['not a secret'] },
    });
    expect(secrets).toContain('hunter22');
    expect(secrets).toContain(key);
    expect(secrets).toContain('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC');
    expect(secrets).toContain('open sesame');
    expect(secrets).not.toContain('svc-flights');
    expect(secrets).not.toContain('not a secret');
    expect(
      connectionSecrets({ sasl: { mechanism: 'aws', secretAccessKey: 'AKsecret', sessionToken: 'tok3n' } }),
    ).toEqual(['AKsecret', 'tok3n']);
    expect(connectionSecrets({})).toEqual([]);
  });
});
