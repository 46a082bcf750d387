import { describe, expect, test } from '@jest/globals';
import type { MemberState } from './consumer-member.js';
import { groupsStatus, type GroupStatusView } from './groups-status.js';

type Member = GroupStatusView['members'][number];
const member = (state: MemberState, failure?: Member['failure']): Member => ({ state, failure });
const group = (members: Member[], running = true): GroupStatusView => ({ running, members });

describe('groupsStatus (KafkaGroupsServer.status)', () => {
  test('no group, or none running: stopped', () => {
    expect(groupsStatus([])).toBe('stopped');
    expect(groupsStatus([group([member('stopped')], false)])).toBe('stopped');
  });

  test('connected only when every member of every running group joined', () => {
    expect(groupsStatus([group([member('joined'), member('joined')]), group([member('joined')])])).toBe(
      'connected',
    );
    expect(groupsStatus([group([member('joined'), member('starting')])])).toBe('disconnected');
  });

  test('a stopped group does not count: the running ones decide', () => {
    expect(groupsStatus([group([member('joined')]), group([member('stopped')], false)])).toBe('connected');
    expect(groupsStatus([group([member('rebalancing')], false), group([member('joined')])])).toBe(
      'connected',
    );
  });

  test('any member rejoining: rebalancing', () => {
    expect(groupsStatus([group([member('joined'), member('rebalancing')]), group([member('joined')])])).toBe(
      'rebalancing',
    );
  });

  test('brokers unreachable: disconnected, whether the consumer failed to start or kafkajs restarts it', () => {
    expect(groupsStatus([group([member('crashed', 'unreachable')])])).toBe('disconnected');
    expect(groupsStatus([group([member('rebalancing', 'unreachable'), member('joined')])])).toBe(
      'disconnected',
    );
  });

  test('a member that crashed for good: crashed, the worst of all', () => {
    expect(
      groupsStatus([group([member('crashed', 'crashed')]), group([member('crashed', 'unreachable')])]),
    ).toBe('crashed');
    // Refused by the ACLs: the member is shown stopped while its group runs.
    expect(groupsStatus([group([member('stopped', 'crashed'), member('joined')])])).toBe('crashed');
  });

  test('a member of a running group that has not started yet (its topics are checked first): disconnected', () => {
    expect(groupsStatus([group([member('stopped')]), group([member('joined')])])).toBe('disconnected');
  });
});
