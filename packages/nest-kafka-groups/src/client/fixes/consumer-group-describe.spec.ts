import { describe, expect, it } from '@jest/globals';
import {
  decodeConsumerGroupDescribeResponse,
  encodeConsumerGroupDescribeRequest,
  GROUP_ID_NOT_FOUND,
} from './consumer-group-describe.js';

/*
 * Answers a Kafka 4.1.1 broker sent (ApiVersions: ConsumerGroupDescribe 0-1) to ConsumerGroupDescribe v1, recorded
 * from the socket after the correlation id: a group a kafkajs member ("probe", classic) and a Java consumer with
 * group.protocol=consumer ("probe-java") were in, topic "probe-1796199771710" of 2 partitions; and a group that
 * does not exist. DescribeGroups v2 answered the first group at the same time with error 0, state Dead, protocol
 * type "" and no members.
 */
const MIXED_GROUP = Buffer.from(
  '0000000000020000001670726f62652d672d3137393631393937373137313007537461626c6500000002000000020875' +
    '6e69666f726d03177146333330784771517771433131586d464339396c410000000000020b70726f62652d6a6176610b' +
    '2f3132372e302e302e31021470726f62652d313739363139393737313731300102d31122ee91b842c99fd2b93db54cef' +
    'd71470726f62652d313739363139393737313731300200000001000002d31122ee91b842c99fd2b93db54cefd7147072' +
    '6f62652d313739363139393737313731300200000001000001002b70726f62652d30313765616163612d346336652d34' +
    '3063662d613262642d6633346532613531333038390000000000020670726f62650b2f3132372e302e302e3102147072' +
    '6f62652d313739363139393737313731300102d31122ee91b842c99fd2b93db54cefd71470726f62652d313739363139' +
    '393737313731300200000000000002d31122ee91b842c99fd2b93db54cefd71470726f62652d31373936313939373731' +
    '373130020000000000000000800000000000',
  'hex',
);
const NO_SUCH_GROUP = Buffer.from(
  '00000000000200452547726f7570206e6f2d737563682d67726f75702d70726f6265206e6f7420666f756e642e146e6f' +
    '2d737563682d67726f75702d70726f62650100000000000000000101800000000000',
  'hex',
);
const TOPIC = 'probe-1796199771710';

describe('ConsumerGroupDescribe codec', () => {
  it('decodes a group of the consumer protocol with a classic and a consumer member, as the broker sent it', () => {
    const { throttleTimeMs, groups } = decodeConsumerGroupDescribeResponse(MIXED_GROUP, 1);
    expect(throttleTimeMs).toBe(0);
    expect(groups).toHaveLength(1);
    const [group] = groups;
    expect(group).toMatchObject({
      errorCode: 0,
      errorMessage: null,
      groupId: 'probe-g-1796199771710',
      groupState: 'Stable',
      groupEpoch: 2,
      assignmentEpoch: 2,
      assignorName: 'uniform',
    });
    expect(group.members).toEqual([
      {
        memberId: 'qF330xGqQwqC11XmFC99lA',
        instanceId: null,
        rackId: null,
        memberEpoch: 2,
        clientId: 'probe-java',
        clientHost: '/127.0.0.1',
        subscribedTopicNames: [TOPIC],
        subscribedTopicRegex: '',
        assignment: { [TOPIC]: [1] },
        targetAssignment: { [TOPIC]: [1] },
        memberType: 'consumer',
      },
      {
        memberId: 'probe-017eaaca-4c6e-40cf-a2bd-f34e2a513089',
        instanceId: null,
        rackId: null,
        memberEpoch: 2,
        clientId: 'probe',
        clientHost: '/127.0.0.1',
        subscribedTopicNames: [TOPIC],
        subscribedTopicRegex: '',
        assignment: { [TOPIC]: [0] },
        targetAssignment: { [TOPIC]: [0] },
        memberType: 'classic',
      },
    ]);
  });

  it("decodes the answer for a group that does not exist: GROUP_ID_NOT_FOUND with the broker's message", () => {
    const { groups } = decodeConsumerGroupDescribeResponse(NO_SUCH_GROUP, 1);
    expect(groups).toEqual([
      {
        errorCode: GROUP_ID_NOT_FOUND,
        errorMessage: 'Group no-such-group-probe not found.',
        groupId: 'no-such-group-probe',
        groupState: '',
        groupEpoch: 0,
        assignmentEpoch: 0,
        assignorName: '',
        members: [],
      },
    ]);
  });

  it("reads each version's fields: v1 bytes read as v0 (no member type) leave bytes over and fail, naming the request", () => {
    expect(() => decodeConsumerGroupDescribeResponse(MIXED_GROUP, 0)).toThrow(/ConsumerGroupDescribe/);
  });

  it('fails on a truncated answer instead of reading past it', () => {
    expect(() => decodeConsumerGroupDescribeResponse(MIXED_GROUP.subarray(0, 200), 1)).toThrow(
      /ConsumerGroupDescribe: the response ends/,
    );
  });

  it('encodes the request after the header v2 tag buffer: compact group ids, no authorized operations, no tags', () => {
    expect(encodeConsumerGroupDescribeRequest(['g1', 'grp']).toString('hex')).toBe(
      '00' +
        '03' +
        '03' +
        Buffer.from('g1').toString('hex') +
        '04' +
        Buffer.from('grp').toString('hex') +
        '00' +
        '00',
    );
    // A length that needs two varint bytes: 200 + 1 = 0xc9 -> c9 01.
    const long = 'x'.repeat(200);
    expect(encodeConsumerGroupDescribeRequest([long]).subarray(0, 4).toString('hex')).toBe('0002c901');
  });
});
