import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';
import { onPositionReset } from '../offset-out-of-range.js';
import { KafkaCoordinatorNotReadyError } from '../../errors/kafka-coordinator-not-ready.error.js';
import {
  isBrokerUnreachable,
  isCoordinatorLost,
  isCoordinatorNotReady,
  reconnectBackoffMs,
} from './consumer-group.js';

/**
 * kafkajs's ConsumerGroup (the library's instance, fixed, and the installed module as released) recovering from a
 * fetch that failed because a partition's leader moved, while the member has resolved offsets it has not committed
 * yet (batches of the other brokers' fetchers). The cluster and the group coordinator are in memory.
 */
const Released = createRequire(import.meta.url)('kafkajs/src/consumer/consumerGroup.js');
const Fixed = kafkajsInternal('src/consumer/consumerGroup.js');
const { createErrorFromCode } = kafkajsInternal('src/protocol/error.js');
const { MemberAssignment } = kafkajsInternal('src/consumer/assignerProtocol.js');
const { createLogger, LEVELS } = kafkajsInternal('src/loggers/index.js');
const InstrumentationEventEmitter = kafkajsInternal('src/instrumentation/emitter.js');

const TOPIC = 't';
const NOT_LEADER_OR_FOLLOWER = 6;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
const GROUP_COORDINATOR_NOT_AVAILABLE = 15;
const REBALANCE_IN_PROGRESS = 27;
const quiet = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} });

/**
 * A follower of a Stable group on `t`, assigned partitions 0 and 1 (committed at 10 and 20). The coordinator answers
 * a follower's JoinGroup with the current generation, as Kafka does when its subscription did not change.
 */
function member(ConsumerGroup: any, clusterOverrides: Record<string, unknown> = {}) {
  const requests: string[] = [];
  const coordinator = {
    isConnected: () => true,
    async joinGroup() {
      requests.push('JoinGroup');
      return { generationId: 7, leaderId: 'm0', memberId: 'm1', members: [], groupProtocol: 'p' };
    },
    async syncGroup() {
      requests.push('SyncGroup');
      const memberAssignment = MemberAssignment.encode({
        version: 0,
        assignment: { [TOPIC]: [0, 1] },
        userData: Buffer.alloc(0),
      });
      return { memberAssignment };
    },
    async offsetFetch() {
      requests.push('OffsetFetch');
      const partitions = [
        { partition: 0, offset: '10' },
        { partition: 1, offset: '20' },
      ];
      return { responses: [{ topic: TOPIC, partitions }] };
    },
  };
  const cluster = {
    async findGroupCoordinator() {
      return coordinator;
    },
    async refreshMetadata() {
      requests.push('Metadata');
    },
    async refreshMetadataIfNecessary() {},
    // Both partitions led by broker 1.
    findTopicPartitionMetadata: () => [
      { partitionId: 0, leader: 1 },
      { partitionId: 1, leader: 1 },
    ],
    committedOffsets: () => ({}),
    ...clusterOverrides,
  };
  const group = new ConsumerGroup({
    retry: { retries: 0 },
    cluster,
    groupId: 'g',
    topics: [TOPIC],
    topicConfigurations: { [TOPIC]: { fromBeginning: true } },
    logger: quiet,
    instrumentationEmitter: new InstrumentationEventEmitter(),
    assigners: [{ name: 'p', protocol: () => ({ name: 'p', metadata: Buffer.alloc(0) }) }],
    sessionTimeout: 6_000,
    rebalanceTimeout: 10_000,
    autoCommit: true,
    autoCommitInterval: 1_000,
    autoCommitThreshold: null,
  });
  return { group, requests };
}

/** Joined, the committed offsets read (the first fetch), and partition 0 handled up to 14 but not committed. */
async function joinedWithResolvedOffset(ConsumerGroup: any, clusterOverrides: Record<string, unknown> = {}) {
  const { group, requests } = member(ConsumerGroup, clusterOverrides);
  await group.joinAndSync();
  await group.offsetManager.resolveOffsets();
  group.resolveOffset({ topic: TOPIC, partition: 0, offset: '14' });
  requests.length = 0;
  return { group, requests };
}

describe('kafkajs ConsumerGroup: a fetch whose partition leader moved (the fix in place of src/consumer/consumerGroup)', () => {
  it('released: rejoins the group, which drops the offsets resolved since the last commit', async () => {
    const { group, requests } = await joinedWithResolvedOffset(Released);
    const offsetManager = group.offsetManager;
    await group.recoverFromFetch(createErrorFromCode(NOT_LEADER_OR_FOLLOWER));
    expect(requests).toEqual(['Metadata', 'JoinGroup', 'SyncGroup']);
    expect(group.offsetManager).not.toBe(offsetManager);
    // Nothing left to commit: the next fetch of partition 0 starts again at the committed offset 10.
    expect(group.uncommittedOffsets()).toEqual({ topics: [] });
    await group.offsetManager.resolveOffsets();
    expect(group.offsetManager.nextOffset(TOPIC, 0).toString()).toBe('10');
  });

  it('fixed: refreshes the metadata only; the resolved offsets stay, to be committed and fetched from', async () => {
    const { group, requests } = await joinedWithResolvedOffset(Fixed);
    const offsetManager = group.offsetManager;
    await group.recoverFromFetch(createErrorFromCode(NOT_LEADER_OR_FOLLOWER));
    expect(requests).toEqual(['Metadata']);
    expect(group.offsetManager).toBe(offsetManager);
    expect(group.uncommittedOffsets()).toEqual({
      topics: [{ topic: TOPIC, partitions: [{ partition: '0', offset: '15' }] }],
    });
    expect(group.offsetManager.nextOffset(TOPIC, 0).toString()).toBe('15');
  });

  it('fixed: the other fetch errors are recovered as released (a changed partition count still rejoins)', async () => {
    const { group, requests } = await joinedWithResolvedOffset(Fixed);
    const { KafkaJSStaleTopicMetadataAssignment, KafkaJSNumberOfRetriesExceeded } =
      kafkajsInternal('src/errors.js');
    await group.recoverFromFetch(
      new KafkaJSStaleTopicMetadataAssignment('Topic has been updated', { topic: TOPIC }),
    );
    expect(requests).toEqual(['JoinGroup', 'SyncGroup']);
    const other = new KafkaJSNumberOfRetriesExceeded(new Error('boom'), { retryCount: 1, retryTime: 1 });
    await expect(group.recoverFromFetch(other)).rejects.toBe(other);
  });
});

const { KafkaJSConnectionError, KafkaJSConnectionClosedError, KafkaJSNumberOfRetriesExceeded } =
  kafkajsInternal('src/errors.js');

/** Broker 1, the partitions' leader, refuses connections (or closed the one its fetch was sent on). */
function deadLeader(error: () => Error) {
  const removed: unknown[] = [];
  return {
    removed,
    cluster: {
      async findBroker() {
        throw error();
      },
      removeBroker(broker: unknown) {
        removed.push(broker);
      },
    },
  };
}

const refused = () =>
  new KafkaJSConnectionError('connect ECONNREFUSED 127.0.0.1:9093', { code: 'ECONNREFUSED' });
const closed = () => new KafkaJSConnectionClosedError('Closed connection', { host: '127.0.0.1', port: 9093 });

describe('kafkajs ConsumerGroup: a fetch from a broker that cannot be reached', () => {
  it('released: a refused connection is thrown to the runner, which stops every fetcher', async () => {
    const dead = deadLeader(refused);
    const { group } = await joinedWithResolvedOffset(Released, dead.cluster);
    await expect(group.fetch(1)).rejects.toMatchObject({ name: 'KafkaJSConnectionError' });
  });

  it('released: a closed connection drops the broker from the pool (the broker list changes)', async () => {
    const dead = deadLeader(closed);
    const { group } = await joinedWithResolvedOffset(Released, dead.cluster);
    await expect(group.fetch(1)).resolves.toEqual([]);
    expect(dead.removed).toEqual([{ host: '127.0.0.1', port: 9093 }]);
  });

  it('fixed: either one waits, refreshes the metadata and returns no batches, keeping the broker and the offsets', async () => {
    for (const error of [refused, closed]) {
      const dead = deadLeader(error);
      const { group, requests } = await joinedWithResolvedOffset(Fixed, dead.cluster);
      const started = Date.now();
      await expect(group.fetch(1)).resolves.toEqual([]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(reconnectBackoffMs(1) - 5);
      expect(requests).toEqual(['Metadata']);
      expect(dead.removed).toEqual([]);
      expect(group.uncommittedOffsets()).toEqual({
        topics: [{ topic: TOPIC, partitions: [{ partition: '0', offset: '15' }] }],
      });
    }
  });

  it('fixed: the wait doubles per failed fetch of that broker, up to 1 s, and starts again after a fetch that worked', async () => {
    expect([1, 2, 3, 4, 5, 10].map(reconnectBackoffMs)).toEqual([100, 200, 400, 800, 1000, 1000]);
    let fail = true;
    const { group } = await joinedWithResolvedOffset(Fixed, {
      async findBroker() {
        if (fail) throw refused();
        return { fetch: async () => ({ responses: [] }) };
      },
    });
    await group.fetch(1);
    await group.fetch(1);
    expect(group.unreachableFetches.get('1')).toBe(2);
    fail = false;
    await group.fetch(1);
    expect(group.unreachableFetches.has('1')).toBe(false);
  });

  it('isBrokerUnreachable: connection errors and request timeouts, also as the cause of a retry error', () => {
    expect(isBrokerUnreachable(refused())).toBe(true);
    expect(isBrokerUnreachable(closed())).toBe(true);
    expect(isBrokerUnreachable({ name: 'KafkaJSRequestTimeoutError' })).toBe(true);
    const exhausted = new KafkaJSNumberOfRetriesExceeded(refused(), {
      retryCount: 1,
      retryTime: 1,
      cause: refused(),
    });
    expect(isBrokerUnreachable(exhausted)).toBe(true);
    expect(isBrokerUnreachable(createErrorFromCode(NOT_LEADER_OR_FOLLOWER))).toBe(false);
    expect(isBrokerUnreachable(new Error('boom'))).toBe(false);
  });
});

describe('kafkajs ConsumerGroup (fixed): a subscribed topic missing from the metadata', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  /** The member above, whose metadata refresh fails as Kafka answers for a deleted topic; `exists` is what a
   * broker answers when asked about the topic alone. */
  async function missingTopic(exists: boolean) {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { group, requests } = await joinedWithResolvedOffset(Fixed);
    const refreshError = createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION);
    group.cluster.refreshMetadata = async () => {
      requests.push('Metadata');
      throw refreshError;
    };
    group.cluster.brokerPool = {
      // No broker connected yet: the one findConnectedBroker connects is asked.
      brokers: {},
      findConnectedBroker: async () => ({
        async metadata(topics: string[]) {
          requests.push(`Metadata ${topics.join()}`);
          if (!exists) throw createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION);
        },
      }),
    };
    if (!exists) {
      // The coordinator has dropped the deleted topic's committed offsets.
      const coordinator = await group.offsetManager.getCoordinator();
      coordinator.offsetFetch = async ({ topics }: { topics: { topic: string; partitions: object[] }[] }) => {
        requests.push('OffsetFetch');
        const [{ topic, partitions }] = topics;
        return { responses: [{ topic, partitions: partitions.map((p) => ({ ...p, offset: '-1' })) }] };
      };
    }
    const resets: string[] = [];
    const unwatch = onPositionReset('g', 'm1', (topic, partition, reason) =>
      resets.push(`${topic}[${partition}] ${reason}`),
    );
    const recovered = group.recoverFromFetch(createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION));
    await expect(recovered).rejects.toBe(refreshError);
    unwatch();
    return { group, requests, resets, warn };
  }

  it('deleted (the broker names it unknown): the positions are forgotten, the member told, the error goes on', async () => {
    const { group, requests, resets, warn } = await missingTopic(false);
    // Forgotten only once the coordinator answered no committed offset for them (topic-deletion.ts).
    expect(requests).toEqual(['Metadata', 'Metadata t', 'OffsetFetch']);
    expect(group.uncommittedOffsets()).toEqual({ topics: [] });
    expect(group.offsetManager.committedOffsets()).toEqual({ [TOPIC]: {} });
    expect(resets).toEqual(['t[0] topic-deleted', 't[1] topic-deleted']);
    expect(String(warn.mock.calls[0][0])).toBe(
      'Group "g": topic "t" was deleted; this member forgets its positions [0]@15, [1]@20. ' +
        'Created again, these partitions start at the offset the group commits for them, else at their earliest',
    );
  });

  it('the topic on its own is known: nothing is forgotten (the resolved offset stays to be committed)', async () => {
    const { group, resets, warn } = await missingTopic(true);
    expect(group.uncommittedOffsets()).toEqual({
      topics: [{ topic: TOPIC, partitions: [{ partition: '0', offset: '15' }] }],
    });
    expect(resets).toEqual([]);
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('kafkajs ConsumerGroup: a group coordinator that died or moved (found again, as the Java consumer does)', () => {
  const NOT_COORDINATOR = 16;

  /** A coordinator broker that answers heartbeats and commits, or fails them with `failure` while it is set. */
  function coordinatorBroker(nodeId: number, requests: string[]) {
    const broker = {
      nodeId,
      failure: undefined as (() => Error) | undefined,
      isConnected: () => true,
      async heartbeat() {
        requests.push(`Heartbeat ${nodeId}`);
        if (broker.failure) throw broker.failure();
      },
      async offsetCommit() {
        requests.push(`OffsetCommit ${nodeId}`);
        if (broker.failure) throw broker.failure();
      },
    };
    return broker;
  }

  /** Joined with broker 1 as coordinator; FindCoordinator names `current.nodeId` (broker 2 unless a test says). */
  async function joined(ConsumerGroup: any) {
    const requests: string[] = [];
    const first = coordinatorBroker(1, requests);
    const second = coordinatorBroker(2, requests);
    const current = { nodeId: 2, reachable: true };
    const { group } = member(ConsumerGroup, {
      async findGroupCoordinatorMetadata() {
        requests.push('FindCoordinator');
        return { coordinator: { nodeId: current.nodeId } };
      },
      async findBroker({ nodeId }: { nodeId: number }) {
        if (!current.reachable) throw refused();
        return nodeId === 1 ? first : second;
      },
    });
    await group.joinAndSync();
    // The join's coordinator (the in-memory one of `member`) stands for broker 1 from here on.
    group.coordinator = first;
    group.offsetManager.coordinator = first;
    group.lastRequest = 0;
    return { group, requests, first, second, current };
  }
  const notCoordinator = () => createErrorFromCode(NOT_COORDINATOR);

  it('released: heartbeats go on to the coordinator found at the join after it refused connections or moved', async () => {
    const { group, requests, first } = await joined(Released);
    first.failure = refused;
    await expect(group.heartbeat({ interval: 0 })).rejects.toThrow(/ECONNREFUSED/);
    first.failure = notCoordinator;
    await expect(group.heartbeat({ interval: 0 })).rejects.toThrow(/not the correct coordinator/);
    await expect(group.heartbeat({ interval: 0 })).rejects.toThrow(/not the correct coordinator/);
    expect(requests).toEqual(['Heartbeat 1', 'Heartbeat 1', 'Heartbeat 1']);
  });

  it.each([
    ['refuses connections', refused],
    ['answers it is not the coordinator', notCoordinator],
    ['answers the coordinator is not available', () => createErrorFromCode(GROUP_COORDINATOR_NOT_AVAILABLE)],
  ])(
    'fixed: a coordinator that %s is looked up again before the next heartbeat and commit, which go to the new one',
    async (_, failure) => {
      const { group, requests, first, second } = await joined(Fixed);
      first.failure = failure;
      await expect(group.heartbeat({ interval: 0 })).rejects.toBeDefined();
      expect(group.coordinatorUnknown).toBe(true);
      await group.heartbeat({ interval: 0 });
      expect(group.coordinatorUnknown).toBe(false);
      expect(group.coordinator).toBe(second);
      expect(group.offsetManager.coordinator).toBe(second);
      group.resolveOffset({ topic: TOPIC, partition: 0, offset: '3' });
      await group.commitOffsets();
      expect(requests).toEqual(['Heartbeat 1', 'FindCoordinator', 'Heartbeat 2', 'OffsetCommit 2']);
    },
  );

  it('fixed: a commit that finds the coordinator gone marks it unknown too; a failed lookup keeps it unknown, the next request looks it up again', async () => {
    const { group, requests, first, current } = await joined(Fixed);
    first.failure = notCoordinator;
    group.resolveOffset({ topic: TOPIC, partition: 0, offset: '3' });
    await expect(group.commitOffsets()).rejects.toThrow(/not the correct coordinator/);
    expect(group.coordinatorUnknown).toBe(true);
    current.reachable = false;
    await expect(group.heartbeat({ interval: 0 })).rejects.toThrow(/ECONNREFUSED/);
    expect(group.coordinatorUnknown).toBe(true);
    current.reachable = true;
    await group.commitOffsets();
    expect(requests).toEqual(['OffsetCommit 1', 'FindCoordinator', 'FindCoordinator', 'OffsetCommit 2']);
  });

  it('fixed: other failures (a rebalance, an unknown member) leave the coordinator as it is', async () => {
    const { group, requests, first } = await joined(Fixed);
    first.failure = () => createErrorFromCode(REBALANCE_IN_PROGRESS);
    await expect(group.heartbeat({ interval: 0 })).rejects.toThrow(/rebalanc/i);
    expect(group.coordinatorUnknown).toBe(false);
    await expect(group.heartbeat({ interval: 0 })).rejects.toThrow(/rebalanc/i);
    expect(requests).toEqual(['Heartbeat 1', 'Heartbeat 1']);
  });

  it('isCoordinatorLost: unreachable or gone from the metadata, not the coordinator, no coordinator; not a rebalance', () => {
    expect(isCoordinatorLost(refused())).toBe(true);
    expect(isCoordinatorLost(notCoordinator())).toBe(true);
    expect(isCoordinatorLost(createErrorFromCode(GROUP_COORDINATOR_NOT_AVAILABLE))).toBe(true);
    const { KafkaJSBrokerNotFound } = kafkajsInternal('src/errors.js');
    const gone = new KafkaJSBrokerNotFound('Broker 3 not found in the cached metadata');
    expect(isCoordinatorLost(gone)).toBe(true);
    expect(
      isCoordinatorLost(
        new KafkaJSNumberOfRetriesExceeded(gone, { retryCount: 1, retryTime: 1, cause: gone }),
      ),
    ).toBe(true);
    expect(isCoordinatorLost(createErrorFromCode(REBALANCE_IN_PROGRESS))).toBe(false);
    expect(isCoordinatorLost(new Error('boom'))).toBe(false);
  });
});

const GROUP_LOAD_IN_PROGRESS = 14;
const createRetry = kafkajsInternal('src/retry');

/**
 * A member joining a coordinator that answers its first JoinGroup or SyncGroup requests "loading the group" or "not
 * available" (a broker that just started: RELIABILITY.md finding 13); `answers` lists the failures in order, then
 * every request succeeds. Retry: `retries`, 1 ms backoff.
 */
function joiningWhileLoading(
  ConsumerGroup: any,
  answers: { request: 'JoinGroup' | 'SyncGroup'; code: number }[],
  retries = 3,
) {
  const requests: string[] = [];
  const pending = [...answers];
  const fail = (request: string) => {
    requests.push(request);
    if (pending[0]?.request === request) throw createErrorFromCode(pending.shift()!.code);
  };
  const coordinator = {
    isConnected: () => true,
    async joinGroup() {
      fail('JoinGroup');
      return { generationId: 1, leaderId: 'm0', memberId: 'm1', members: [], groupProtocol: 'p' };
    },
    async syncGroup() {
      fail('SyncGroup');
      const memberAssignment = MemberAssignment.encode({
        version: 0,
        assignment: { [TOPIC]: [0] },
        userData: Buffer.alloc(0),
      });
      return { memberAssignment };
    },
  };
  const { group } = member(ConsumerGroup, {
    async findGroupCoordinator() {
      requests.push('FindCoordinator');
      return coordinator;
    },
    findTopicPartitionMetadata: () => [{ partitionId: 0, leader: 1 }],
  });
  group.retrier = createRetry({ retries, initialRetryTime: 1, maxRetryTime: 2 });
  return { group, requests };
}

describe('kafkajs ConsumerGroup: joining while the coordinator loads the group (finding 13)', () => {
  const loading = { request: 'JoinGroup' as const, code: GROUP_LOAD_IN_PROGRESS };

  it('released: one "loading" answer to the JoinGroup fails the join (the consumer crashes and restarts)', async () => {
    const { group, requests } = joiningWhileLoading(Released, [loading]);
    await expect(group.joinAndSync()).rejects.toMatchObject({ type: 'GROUP_LOAD_IN_PROGRESS' });
    expect(requests).toEqual(['FindCoordinator', 'JoinGroup']);
  });

  it('fixed: looks the coordinator up and joins again after a backoff, until it is loaded', async () => {
    const { group, requests } = joiningWhileLoading(Fixed, [loading, loading]);
    await group.joinAndSync();
    expect(group.memberId).toBe('m1');
    expect(requests).toEqual([
      'FindCoordinator',
      'JoinGroup',
      'FindCoordinator',
      'JoinGroup',
      'FindCoordinator',
      'JoinGroup',
      'SyncGroup',
    ]);
  });

  it('fixed: a SyncGroup answered "not available" joins again', async () => {
    const { group, requests } = joiningWhileLoading(Fixed, [
      { request: 'SyncGroup', code: GROUP_COORDINATOR_NOT_AVAILABLE },
    ]);
    await group.joinAndSync();
    expect(requests).toEqual([
      'FindCoordinator',
      'JoinGroup',
      'SyncGroup',
      'FindCoordinator',
      'JoinGroup',
      'SyncGroup',
    ]);
  });

  it('fixed: still loading after the retry budget fails with KafkaCoordinatorNotReadyError naming the group', async () => {
    const { group, requests } = joiningWhileLoading(Fixed, Array(10).fill(loading), 2);
    const failure = group.joinAndSync();
    await expect(failure).rejects.toBeInstanceOf(KafkaCoordinatorNotReadyError);
    await expect(failure).rejects.toMatchObject({
      groupId: 'g',
      retries: 2,
      retriable: true,
      message: expect.stringMatching(/^Group "g": .*after 2 retries \(clientRetry\.retries\).*loading/),
    });
    expect(requests.filter((r) => r === 'JoinGroup')).toHaveLength(3);
  });

  it('fixed: other join failures fail at once, as released', async () => {
    const GROUP_AUTHORIZATION_FAILED = 30;
    const { group, requests } = joiningWhileLoading(Fixed, [
      { request: 'JoinGroup', code: GROUP_AUTHORIZATION_FAILED },
    ]);
    await expect(group.joinAndSync()).rejects.toMatchObject({ type: 'GROUP_AUTHORIZATION_FAILED' });
    expect(requests).toEqual(['FindCoordinator', 'JoinGroup']);
  });

  it('released: the committed offsets\' OffsetFetch answered "loading" is thrown to the runner; fixed: the fetcher fetches again', async () => {
    const { group: released } = await joinedWithResolvedOffset(Released);
    await expect(
      released.recoverFromFetch(createErrorFromCode(GROUP_LOAD_IN_PROGRESS)),
    ).rejects.toMatchObject({
      type: 'GROUP_LOAD_IN_PROGRESS',
    });
    const { group, requests } = await joinedWithResolvedOffset(Fixed);
    await group.recoverFromFetch(createErrorFromCode(GROUP_LOAD_IN_PROGRESS));
    expect(group.coordinatorUnknown).toBe(false);
    await group.recoverFromFetch(createErrorFromCode(GROUP_COORDINATOR_NOT_AVAILABLE));
    // Looked up again before the next heartbeat or commit.
    expect(group.coordinatorUnknown).toBe(true);
    expect(requests).toEqual([]);
  });

  it('isCoordinatorNotReady: loading or not available; not "not the coordinator", not a rebalance', () => {
    expect(isCoordinatorNotReady(createErrorFromCode(GROUP_LOAD_IN_PROGRESS))).toBe(true);
    expect(isCoordinatorNotReady(createErrorFromCode(GROUP_COORDINATOR_NOT_AVAILABLE))).toBe(true);
    expect(isCoordinatorNotReady(createErrorFromCode(16))).toBe(false);
    expect(isCoordinatorNotReady(createErrorFromCode(REBALANCE_IN_PROGRESS))).toBe(false);
    expect(isCoordinatorNotReady(new Error('boom'))).toBe(false);
  });
});

describe("kafkajs ConsumerGroup: each fetch's read-replica and stale-assignment checks (fixed against released)", () => {
  /** A group on `t` whose metadata lists `metadata`, with the released fields both checks read. */
  function state(metadata: Array<{ partitionId: number; leader: number | null }>, preferred?: object) {
    return {
      cluster: { findTopicPartitionMetadata: () => metadata },
      preferredReadReplicasPerTopicPartition: preferred === undefined ? {} : { [TOPIC]: preferred },
      topicsSubscribed: [TOPIC],
      partitionsPerSubscribedTopic: new Map([[TOPIC, [0, 1, 2, 3]]]),
      logger: quiet,
    };
  }
  const both = (method: string, self: object, ...args: unknown[]) =>
    [Fixed, Released].map((ConsumerGroup) => {
      try {
        return { value: Object.assign(Object.create(ConsumerGroup.prototype), self)[method](...args) };
      } catch (error) {
        return { error: String(error) };
      }
    });
  const leaders = [
    { partitionId: 0, leader: 2 },
    { partitionId: 1, leader: 1 },
    { partitionId: 2, leader: 2 },
    { partitionId: 3, leader: 1 },
  ];

  it('findReadReplicaForPartitions: the same nodes and partitions, in order, whatever the metadata and preferences', () => {
    const cases: Array<[object, unknown[]]> = [
      [state(leaders), [3, 0, 2, 1]],
      [state(leaders), ['2', '1']],
      [state(leaders, {}), [0, 1, 2, 3]],
      [state(leaders.slice(1)), [0, 1, 2]],
      [state(leaders, { 1: { nodeId: 9, expireAt: Date.now() + 60_000 } }), [0, 1, 2, 3]],
      [state(leaders, { 1: { nodeId: 9, expireAt: 0 } }), [0, 1, 3]],
      [
        state([
          { partitionId: 0, leader: 1 },
          { partitionId: 1, leader: null },
        ]),
        [0, 1],
      ],
    ];
    for (const [self, partitions] of cases) {
      const [fixed, released] = both('findReadReplicaForPartitions', self, TOPIC, partitions);
      expect(fixed).toEqual(released);
    }
    expect(both('findReadReplicaForPartitions', state(leaders), TOPIC, [3, 0, 2, 1])[0]).toEqual({
      value: { 1: [3, 1], 2: [0, 2] },
    });
  });

  it('checkForStaleAssignment: quiet while the metadata has no partition outside the assignment, else the released error', () => {
    const grown = state([...leaders, { partitionId: 4, leader: 1 }]);
    const unassigned = { ...state(leaders), partitionsPerSubscribedTopic: new Map() };
    for (const self of [state(leaders), state(leaders.slice(2)), grown, unassigned]) {
      const [fixed, released] = both('checkForStaleAssignment', self);
      expect(fixed).toEqual(released);
    }
    expect(both('checkForStaleAssignment', grown)[0]).toEqual({
      error: expect.stringMatching(/Topic has been updated/),
    });
  });
});

describe('kafkajs ConsumerGroup: a fetch builds the same request and batches as released (fixed against released)', () => {
  /**
   * A member of a group on `t` (partitions 0, 1, 2, 10 and 11: kafkajs orders them as strings) and `u` (3), led by
   * brokers 1 and 2, every partition committed at 5. Each Fetch is recorded and answered with one record at the
   * fetch offset per partition; `duringFetch` runs while a Fetch is in flight (a seek or pause meanwhile).
   */
  async function fetching(ConsumerGroup: any, clusterOverrides: Record<string, unknown> = {}) {
    const fetches: unknown[] = [];
    let duringFetch: ((group: any) => void) | undefined;
    let fetchError: Error | undefined;
    let preferredReadReplica = -1;
    const assignment = { t: [11, 2, 0, 10, 1], u: [3] };
    const leaders: Record<string, Array<{ partitionId: number; leader: number }>> = {
      t: [0, 1, 2, 10, 11].map((partitionId) => ({ partitionId, leader: partitionId % 2 === 0 ? 1 : 2 })),
      u: [{ partitionId: 3, leader: 1 }],
    };
    const coordinator = {
      isConnected: () => true,
      joinGroup: async () => ({
        generationId: 7,
        leaderId: 'm0',
        memberId: 'm1',
        members: [],
        groupProtocol: 'p',
      }),
      syncGroup: async () => ({
        memberAssignment: MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) }),
      }),
      offsetFetch: async ({
        topics,
      }: {
        topics: Array<{ topic: string; partitions: { partition: number }[] }>;
      }) => ({
        responses: topics.map(({ topic, partitions }) => ({
          topic,
          partitions: partitions.map(({ partition }) => ({ partition, offset: '5' })),
        })),
      }),
    };
    const broker = (nodeId: number) => ({
      async fetch(request: { topics: Array<{ topic: string; partitions: any[] }> }) {
        fetches.push({ nodeId, ...request });
        duringFetch?.(group);
        duringFetch = undefined;
        if (fetchError) throw fetchError;
        return {
          responses: request.topics.map(({ topic, partitions }) => ({
            topicName: topic,
            partitions: partitions.map(({ partition, fetchOffset }) => ({
              partition,
              errorCode: 0,
              highWatermark: '100',
              lastStableOffset: '100',
              abortedTransactions: [],
              preferredReadReplica,
              messages: [{ offset: fetchOffset, key: null, value: Buffer.from('v'), headers: {} }],
            })),
          })),
        };
      },
    });
    const cluster = {
      findGroupCoordinator: async () => coordinator,
      refreshMetadata: async () => {},
      refreshMetadataIfNecessary: async () => {},
      findTopicPartitionMetadata: (topic: string) => leaders[topic],
      findBroker: async ({ nodeId }: { nodeId: number }) => broker(nodeId),
      committedOffsets: () => ({}),
      ...clusterOverrides,
    };
    const group = new ConsumerGroup({
      retry: { retries: 0 },
      cluster,
      groupId: 'g',
      topics: ['t', 'u'],
      topicConfigurations: { t: { fromBeginning: true }, u: { fromBeginning: true } },
      logger: quiet,
      instrumentationEmitter: new InstrumentationEventEmitter(),
      assigners: [{ name: 'p', protocol: () => ({ name: 'p', metadata: Buffer.alloc(0) }) }],
      sessionTimeout: 6_000,
      rebalanceTimeout: 10_000,
      maxWaitTimeInMs: 1,
      maxBytesPerPartition: 1_000,
      autoCommit: false,
    });
    await group.joinAndSync();
    const fetch = async (nodeId: number) => {
      try {
        const batches = await group.fetch(nodeId);
        return batches.map((batch: any) => ({
          topic: batch.topic,
          partition: batch.partition,
          fetchedOffset: batch.fetchedOffset,
          highWatermark: batch.highWatermark,
          offsets: batch.messages.map(({ offset }: { offset: string }) => offset),
        }));
      } catch (error) {
        return { error: String(error) };
      }
    };
    return {
      group,
      fetches,
      fetch,
      whileFetching: (action: (group: any) => void) => (duringFetch = action),
      failFetches: (error: Error | undefined) => (fetchError = error),
      answerWithReadReplica: (nodeId: number) => (preferredReadReplica = nodeId),
      broker,
    };
  }

  /** The same steps on a member of each class: every fetch's batches, then every Fetch request sent. */
  async function scenario(ConsumerGroup: any) {
    const member = await fetching(ConsumerGroup);
    const { group, fetch } = member;
    const steps: unknown[] = [await fetch(1), await fetch(2)];
    group.resolveOffset({ topic: 't', partition: 0, offset: '7' });
    group.pause([{ topic: 't', partitions: [2] }]);
    steps.push(await fetch(1));
    // A seek before the fetch is applied to it; one while it is in flight drops that partition's batch.
    group.seek({ topic: 't', partition: 1, offset: '40' });
    member.whileFetching((g) => g.seek({ topic: 't', partition: 11, offset: '60' }));
    steps.push(await fetch(2), await fetch(2));
    // Paused while in flight: dropped; a whole paused node: nothing asked, nothing returned.
    member.whileFetching((g) => g.pause([{ topic: 'u', partitions: [3] }]));
    steps.push(await fetch(1));
    group.pause([{ topic: 't' }]);
    steps.push(await fetch(1));
    group.resume([{ topic: 't' }, { topic: 'u' }]);
    member.answerWithReadReplica(2);
    steps.push(await fetch(1));
    member.failFetches(new Error('broken'));
    steps.push(await fetch(2));
    const replicas = Object.fromEntries(
      Object.entries(group.preferredReadReplicasPerTopicPartition as Record<string, Record<string, any>>).map(
        ([topic, partitions]) => [topic, Object.keys(partitions).map((p) => [p, partitions[p].nodeId])],
      ),
    );
    return { steps, fetches: member.fetches, replicas };
  }

  it('the same Fetch requests, batches, errors and read-replica preferences, through seeks and pauses', async () => {
    const fixed = await scenario(Fixed);
    const released = await scenario(Released);
    expect(fixed).toEqual(released);
    // What the scenario covers: the string order of partitions, a seek applied, one dropped in flight, pauses.
    expect(fixed.fetches[0]).toMatchObject({
      nodeId: 1,
      topics: [
        {
          topic: 't',
          partitions: [
            { partition: 0, fetchOffset: '5' },
            { partition: 10, fetchOffset: '5' },
            { partition: 2, fetchOffset: '5' },
          ],
        },
        { topic: 'u', partitions: [{ partition: 3, fetchOffset: '5' }] },
      ],
    });
    expect(fixed.steps[3]).toEqual([
      expect.objectContaining({ topic: 't', partition: 1, fetchedOffset: '40' }),
    ]);
    expect(fixed.steps.map((step) => (Array.isArray(step) ? step.length : step))).toEqual([
      4,
      2,
      3,
      1,
      2,
      2,
      0,
      4,
      { error: 'Error: broken' },
    ]);
    expect(fixed.replicas).toEqual({
      t: [
        ['0', 2],
        ['2', 2],
        ['10', 2],
      ],
      u: [['3', 2]],
    });
  });
  it('skips the metadata refresh and the broker lookup only when they would do nothing', async () => {
    const pool = {
      metadata: {
        topicMetadata: [
          { topic: 't', partitionMetadata: [{}, {}, {}, {}, {}] },
          { topic: 'u', partitionMetadata: [{}, {}, {}, {}] },
        ],
      } as object | null,
      metadataExpireAt: Date.now() + 60_000,
      brokers: {} as Record<number, object>,
    };
    const targetTopics = new Set(['t', 'u']);
    const refreshes = jest.fn(async () => {});
    const lookups = jest.fn();
    const member = await fetching(Fixed, {
      brokerPool: pool,
      targetTopics,
      refreshMetadataIfNecessary: refreshes,
    });
    const pooled = (nodeId: number, connected: boolean) => ({
      ...member.broker(nodeId),
      isConnected: () => connected,
    });
    pool.brokers = { 1: pooled(1, true), 2: pooled(2, false) };
    const findBroker = member.group.cluster.findBroker;
    member.group.cluster.findBroker = async (options: { nodeId: number }) => {
      lookups(options.nodeId);
      return findBroker(options);
    };
    const fetchFrom = async (nodeId: number) => {
      refreshes.mockClear();
      lookups.mockClear();
      const batches = await member.fetch(nodeId);
      return {
        batches: (batches as unknown[]).length,
        refreshed: refreshes.mock.calls.length,
        looked: lookups.mock.calls,
      };
    };
    expect(await fetchFrom(1)).toEqual({ batches: 4, refreshed: 0, looked: [] });
    expect(await fetchFrom(2)).toEqual({ batches: 2, refreshed: 0, looked: [[2]] });
    pool.metadataExpireAt = Date.now() - 1;
    expect(await fetchFrom(1)).toMatchObject({ refreshed: 1, looked: [] });
    pool.metadataExpireAt = Date.now() + 60_000;
    targetTopics.add('v');
    expect(await fetchFrom(1)).toMatchObject({ refreshed: 1 });
    targetTopics.delete('v');
    pool.metadata = null;
    expect(await fetchFrom(1)).toMatchObject({ refreshed: 1 });
  });
});
