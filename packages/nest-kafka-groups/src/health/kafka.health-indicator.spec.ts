import { describe, expect, test } from '@jest/globals';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { ConsumerMember } from '../server/consumer-member.js';
import type { GroupRunner } from '../server/group-runner.js';
import type { KafkaGroupsServer } from '../server/kafka-groups.server.js';
import type { KafkaAdminClient } from '../status/kafka-admin.client.js';
import { KafkaHealthIndicator } from './kafka.health-indicator.js';

type MemberLike = Pick<
  ConsumerMember,
  | 'state'
  | 'memberId'
  | 'lastError'
  | 'stoppedPartitions'
  | 'coordinatorProblem'
  | 'deniedUntilFetch'
  | 'deniedUntilFetchWaitsFor'
>;

function member(state: ConsumerMember['state'], extra: Partial<MemberLike> = {}): MemberLike {
  return {
    state,
    memberId: `m-${state}`,
    lastError: undefined,
    stoppedPartitions: new Map(),
    coordinatorProblem: undefined,
    deniedUntilFetch: undefined,
    deniedUntilFetchWaitsFor: undefined,
    ...extra,
  };
}

function indicator(
  groups: Record<string, MemberLike[]>,
  admin: Partial<KafkaAdminClient> = {},
  runner: Partial<Pick<GroupRunner, 'running' | 'closed'>> = {},
) {
  const runners = Object.entries(groups).map(
    ([groupId, members]) =>
      ({ groupId, members, running: true, closed: false, ...runner }) as unknown as GroupRunner,
  );
  const server = { groups: runners } as unknown as KafkaGroupsServer;
  return new KafkaHealthIndicator(new HealthIndicatorService(), admin as KafkaAdminClient, server);
}

describe('KafkaHealthIndicator.groupsCheck', () => {
  test('up when every member joined (a rebalance without an error is normal)', () => {
    const result = indicator({
      a: [member('joined'), member('rebalancing')],
      b: [member('joined')],
    }).groupsCheck('groups');
    expect(result.groups.status).toBe('up');
    expect(result.groups.groups).toEqual({ a: { members: 2, joined: 1 }, b: { members: 1, joined: 1 } });
  });

  test.each([
    ['starting', member('starting'), /has not joined/],
    ['crashed', member('crashed', { lastError: 'boom' }), /crashed.*boom/],
    ['stopped', member('stopped'), /is stopped/],
    ['recovering', member('rebalancing', { lastError: 'connection lost' }), /recovering.*connection lost/],
    [
      'partition stopped',
      member('joined', { stoppedPartitions: new Map([['t:1', 'dead-letter topic "t-dlt" does not exist']]) }),
      /partition t:1 is stopped: dead-letter topic "t-dlt" does not exist/,
    ],
    [
      'without an answer from its coordinator for a session timeout',
      member('joined', {
        coordinatorProblem: 'the group coordinator (broker 3 at 127.0.0.1:9094) has not answered for 12 s',
      }),
      /^member 1 \(m-joined\): the group coordinator \(broker 3 at 127\.0\.0\.1:9094\) has not answered for 12 s$/,
    ],
    [
      'joined again after a topic denial, no fetch through yet',
      member('joined', {
        deniedUntilFetch: 'not authorized to read topic t in group a as user u',
        deniedUntilFetchWaitsFor: 'no fetch went through yet',
      }),
      /^member 1 \(m-joined\): not authorized to read topic t in group a as user u \(joined again; no fetch went through yet\)$/,
    ],
    [
      'rebalancing after a topic denial that no fetch lifted yet',
      member('rebalancing', {
        deniedUntilFetch: 'not authorized to read topic t in group a as user u',
        deniedUntilFetchWaitsFor: 'not confirmed while partitions are paused: p[0,1]',
      }),
      /^member 1 \(m-rebalancing\): not authorized .* \(joined again; not confirmed while partitions are paused: p\[0,1\]\)$/,
    ],
  ])('down when a member is %s, saying why', (_, bad, problem) => {
    const result = indicator({ a: [member('joined'), bad] }).groupsCheck('groups');
    expect(result.groups.status).toBe('down');
    expect(result.groups.groups.a.problems).toEqual([expect.stringMatching(problem)]);
  });
});

describe('KafkaHealthIndicator.groupsCheck of a group the application stopped', () => {
  test('up and marked stopped when stopped on purpose (autoStart: false, KafkaGroups.stop)', () => {
    const result = indicator({ a: [member('stopped')] }, {}, { running: false }).groupsCheck('groups');
    expect(result.groups.status).toBe('up');
    expect(result.groups.groups).toEqual({ a: { members: 1, joined: 0, stopped: true } });
  });

  test('down while shutting down (the members are checked as usual)', () => {
    const result = indicator({ a: [member('stopped')] }, {}, { running: false, closed: true }).groupsCheck(
      'groups',
    );
    expect(result.groups.status).toBe('down');
  });
});

describe('KafkaHealthIndicator.brokerCheck', () => {
  test('up with the cluster it reached', async () => {
    const admin = {
      run: async (_what: string, _timeout: number, fn: (a: never) => Promise<unknown>) =>
        fn({
          describeCluster: async () => ({
            clusterId: 'c1',
            controller: 1,
            brokers: [{ nodeId: 1, host: 'h', port: 9 }],
          }),
        } as never),
    } as unknown as KafkaAdminClient;
    const result = await indicator({}, admin).brokerCheck('broker', 1_000);
    expect(result.broker).toMatchObject({ status: 'up', clusterId: 'c1', brokers: ['h:9'], controller: 1 });
  });

  test('down with the error when the broker does not answer', async () => {
    const admin = {
      run: async () => Promise.reject(new Error('no answer within 1000 ms')),
    } as unknown as KafkaAdminClient;
    const result = await indicator({}, admin).brokerCheck('broker', 1_000);
    expect(result.broker).toMatchObject({ status: 'down', message: 'no answer within 1000 ms' });
  });
});
