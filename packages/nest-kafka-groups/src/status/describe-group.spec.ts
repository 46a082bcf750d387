import { describe, expect, it } from '@jest/globals';
import type { Admin, ConsumerGroupDescribeGroup, ConsumerGroupDescriptions } from '../client/kafkajs.js';
import { describeGroup } from './describe-group.js';

/*
 * How the status reads a group from the broker's answers (the answers themselves are the real broker's, see
 * client/fixes/consumer-group-describe.spec.ts and test/outside-in.e2e-spec.ts); here the choice between them,
 * including a broker without ConsumerGroupDescribe, which the e2e broker (Kafka 4.1) cannot play.
 */
function admin(answers: {
  state: string;
  consumer?: ConsumerGroupDescriptions;
  listed?: string[];
}): Admin & { calls: string[] } {
  const calls: string[] = [];
  const fake = {
    calls,
    describeGroups: async (groupIds: string[]) => {
      calls.push('DescribeGroups');
      return {
        groups: groupIds.map((groupId) => ({
          groupId,
          errorCode: 0,
          state: answers.state,
          protocolType: answers.state === 'Dead' ? '' : 'consumer',
          protocol: answers.state === 'Dead' ? '' : 'range',
          members: [],
        })),
      };
    },
    describeConsumerGroups: async () => {
      calls.push('ConsumerGroupDescribe');
      return answers.consumer;
    },
    listGroups: async () => {
      calls.push('ListGroups');
      return { groups: (answers.listed ?? []).map((groupId) => ({ groupId, protocolType: 'consumer' })) };
    },
  };
  return fake as unknown as Admin & { calls: string[] };
}

const group = (overrides: Partial<ConsumerGroupDescribeGroup>): ConsumerGroupDescribeGroup => ({
  errorCode: 0,
  errorMessage: null,
  groupId: 'g',
  groupState: 'Stable',
  groupEpoch: 2,
  assignmentEpoch: 2,
  assignorName: 'uniform',
  members: [],
  ...overrides,
});

const noGroup = { state: 'Dead', groupProtocol: null, groupMembers: 0, members: [] };

describe('describeGroup', () => {
  it('a classic group: DescribeGroups alone', async () => {
    const broker = admin({ state: 'Stable' });
    expect(await describeGroup(broker, 'g')).toEqual({
      state: 'Stable',
      groupProtocol: 'classic',
      groupMembers: 0,
      members: [],
    });
    expect(broker.calls).toEqual(['DescribeGroups']);
  });

  it('Dead to DescribeGroups, described by ConsumerGroupDescribe: a group of the consumer protocol', async () => {
    const member = {
      memberId: 'm1',
      instanceId: null,
      rackId: null,
      memberEpoch: 2,
      clientId: 'java',
      clientHost: '/127.0.0.1',
      subscribedTopicNames: ['t'],
      subscribedTopicRegex: null,
      assignment: { t: [1] },
      targetAssignment: { t: [1] },
      memberType: 'consumer' as const,
    };
    const broker = admin({ state: 'Dead', consumer: { groups: [group({ members: [member] })] } });
    expect(await describeGroup(broker, 'g')).toEqual({
      state: 'Stable',
      groupProtocol: 'consumer',
      groupMembers: 1,
      members: [
        {
          memberId: 'm1',
          clientId: 'java',
          clientHost: '/127.0.0.1',
          assignment: { t: [1] },
          protocol: 'consumer',
        },
      ],
    });
    expect(broker.calls).toEqual(['DescribeGroups', 'ConsumerGroupDescribe']);
  });

  it('Dead to both (GROUP_ID_NOT_FOUND): no such group', async () => {
    const broker = admin({ state: 'Dead', consumer: { groups: [group({ errorCode: 69, groupState: '' })] } });
    expect(await describeGroup(broker, 'g')).toEqual(noGroup);
  });

  it('a broker without ConsumerGroupDescribe: a group it lists is of the consumer protocol, state and members unknown', async () => {
    const listed = admin({ state: 'Dead', consumer: null, listed: ['g'] });
    expect(await describeGroup(listed, 'g')).toEqual({
      state: null,
      groupProtocol: 'consumer',
      groupMembers: null,
      members: [],
    });
    expect(listed.calls).toEqual(['DescribeGroups', 'ConsumerGroupDescribe', 'ListGroups']);
    expect(await describeGroup(admin({ state: 'Dead', consumer: null, listed: ['other'] }), 'g')).toEqual(
      noGroup,
    );
  });
});
