import { describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';
import { FirstSeenPartitions } from './offset-manager.js';

/**
 * kafkajs's OffsetManager (the library's instance, fixed, and the installed module as released) for three members
 * of one group created from one `Kafka` client: each member's cluster gets the client's shared offsets map, as
 * `Kafka#consumer()` builds it, and each join builds a new OffsetManager. The coordinator is in memory.
 */
const Released = createRequire(import.meta.url)('kafkajs/src/consumer/offsetManager/index.js');
const Fixed = kafkajsInternal('src/consumer/offsetManager/index.js');
const Cluster = kafkajsInternal('src/cluster/index.js');
const { createLogger, LEVELS } = kafkajsInternal('src/loggers/index.js');

const TOPIC = 't';
const quiet = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} });

/** One `Kafka` client: its consumers' clusters share one offsets map. */
function client() {
  const offsets = new Map();
  return () =>
    new Cluster({
      logger: quiet,
      brokers: ['127.0.0.1:1'],
      socketFactory: () => undefined,
      retry: {},
      offsets,
    });
}

/** The group coordinator: the committed offsets, and the commits each member sent. */
function coordinator(committed: Record<number, string>) {
  const commits: string[] = [];
  return {
    commits,
    isConnected: () => true,
    async offsetFetch({ topics }: { topics: { topic: string; partitions: { partition: number }[] }[] }) {
      return {
        responses: topics.map(({ topic, partitions }) => ({
          topic,
          partitions: partitions.map(({ partition }) => ({
            partition,
            offset: committed[partition] ?? '-1',
          })),
        })),
      };
    },
    async offsetCommit({ memberId, topics }: { memberId: string; topics: any[] }) {
      for (const { topic, partitions } of topics) {
        for (const { partition, offset } of partitions)
          commits.push(`${memberId} ${topic}[${partition}]=${offset}`);
      }
    },
  };
}

function join(
  OffsetManager: any,
  cluster: unknown,
  broker: ReturnType<typeof coordinator>,
  memberId: string,
  partitions: number[],
) {
  return new OffsetManager({
    cluster,
    coordinator: broker,
    memberAssignment: partitions.length > 0 ? { [TOPIC]: partitions } : {},
    autoCommit: true,
    autoCommitInterval: 1_000,
    autoCommitThreshold: null,
    topicConfigurations: { [TOPIC]: { fromBeginning: true } },
    instrumentationEmitter: { emit() {} },
    groupId: 'g',
    generationId: 2,
    memberId,
  });
}

/** Three members on two partitions; the idle one's join completes last. */
async function threeMembers(OffsetManager: any) {
  const cluster = client();
  const broker = coordinator({ 0: '3', 1: '7' });
  const m1 = join(OffsetManager, cluster(), broker, 'm1', [0]);
  const m2 = join(OffsetManager, cluster(), broker, 'm2', [1]);
  // Each member's first fetch reads its committed offsets.
  await m1.resolveOffsets();
  await m2.resolveOffsets();
  join(OffsetManager, cluster(), broker, 'm3', []);
  return { m1, m2, broker };
}

describe('kafkajs OffsetManager: members of one client in one group (the fix in place of src/consumer/offsetManager)', () => {
  it('released: an idle member joining last removes the topic from its siblings, whose commit then throws', async () => {
    const { m1, m2 } = await threeMembers(Released);
    m1.resolveOffset({ topic: TOPIC, partition: 0, offset: '5' });
    await expect(m1.commitOffsets()).rejects.toThrow("Cannot read properties of undefined (reading '0')");
    // The next fetch of the other member fails the same way.
    await expect(m2.resolveOffsets()).rejects.toThrow("Cannot read properties of undefined (reading '1')");
  });

  it('fixed: each member commits what it resolved and fetches on, whoever joined last', async () => {
    const { m1, m2, broker } = await threeMembers(Fixed);
    m1.resolveOffset({ topic: TOPIC, partition: 0, offset: '5' });
    m2.resolveOffset({ topic: TOPIC, partition: 1, offset: '9' });
    await m1.commitOffsets();
    await m2.commitOffsets();
    await m2.resolveOffsets();
    expect(broker.commits).toEqual(['m1 t[0]=6', 'm2 t[1]=10']);
    expect(m2.nextOffset(TOPIC, 1).toString()).toBe('10');
  });

  it("fixed: a sibling joining keeps this member's committed offsets (nothing fetched or committed again)", async () => {
    const cluster = client();
    const broker = coordinator({ 0: '3', 1: '7' });
    const m1 = join(Fixed, cluster(), broker, 'm1', [0]);
    await m1.resolveOffsets();
    m1.resolveOffset({ topic: TOPIC, partition: 0, offset: '5' });
    await m1.commitOffsets();
    join(Fixed, cluster(), broker, 'm2', [1]);
    await m1.commitOffsets();
    expect(broker.commits).toEqual(['m1 t[0]=6']);
    expect(m1.committedOffsets()).toEqual({ [TOPIC]: { 0: '6' } });
  });

  it('released: an offset resolved for a partition of another member is committed; a topic not assigned throws', async () => {
    const broker = coordinator({ 0: '3', 1: '7' });
    const m1 = join(Released, client()(), broker, 'm1', [0]);
    await m1.resolveOffsets();
    m1.resolveOffset({ topic: TOPIC, partition: 1, offset: '4' });
    await m1.commitOffsets();
    expect(broker.commits).toEqual(['m1 t[1]=5']);
    expect(() => m1.resolveOffset({ topic: 'other', partition: 0, offset: '4' })).toThrow(TypeError);
  });

  it("fixed: an offset resolved outside this generation's assignment is ignored", async () => {
    const broker = coordinator({ 0: '3', 1: '7' });
    const m1 = join(Fixed, client()(), broker, 'm1', [0]);
    await m1.resolveOffsets();
    m1.resolveOffset({ topic: TOPIC, partition: 1, offset: '4' });
    m1.resolveOffset({ topic: 'other', partition: 0, offset: '4' });
    m1.resolveOffset({ topic: TOPIC, partition: 0, offset: '3' });
    await m1.commitOffsets();
    expect(broker.commits).toEqual(['m1 t[0]=4']);
  });
});

/**
 * Member m1 of group `group` (fromBeginning false) assigned `assignment` of t, its cluster's metadata showing
 * `partitionCount` partitions of t (none loaded when undefined), the coordinator holding `committed`.
 */
function memberOf(
  group: string,
  committed: Record<number, string>,
  assignment: number[],
  partitionCount?: number,
) {
  const broker = coordinator(committed);
  const listed: unknown[] = [];
  const cluster = {
    committedOffsets: () => ({}),
    brokerPool: {
      metadata:
        partitionCount === undefined
          ? undefined
          : { topicMetadata: [{ topic: TOPIC, partitionMetadata: new Array(partitionCount).fill({}) }] },
    },
    async fetchTopicsOffset(
      topics: { topic: string; fromBeginning: boolean; partitions: { partition: number }[] }[],
    ) {
      listed.push(topics);
      return topics.map(({ topic, fromBeginning, partitions }) => ({
        topic,
        partitions: partitions.map(({ partition }) => ({ partition, offset: fromBeginning ? '0' : '6' })),
      }));
    },
  };
  const manager = new Fixed({
    cluster,
    coordinator: broker,
    memberAssignment: { [TOPIC]: assignment },
    autoCommit: true,
    autoCommitInterval: 1_000,
    autoCommitThreshold: null,
    topicConfigurations: { [TOPIC]: { fromBeginning: false } },
    instrumentationEmitter: { emit() {} },
    groupId: group,
    generationId: 2,
    memberId: 'm1',
  });
  const offsetFetches = jest.spyOn(broker, 'offsetFetch');
  return { manager, broker, cluster, listed, committed, offsetFetches };
}

describe('kafkajs OffsetManager (fixed): a topic deleted while the group runs', () => {
  /** Member m1 of group `group` on t[0] and t[1] (fromBeginning false), its cluster's metadata showing 2 partitions. */
  function member(group: string, committed: Record<number, string>) {
    const { manager: m1, broker, listed } = memberOf(group, committed, [0, 1], 2);
    return { m1, broker, listed, committed };
  }

  it('forgets the positions; the next fetch starts at the committed offset the group has now, else the earliest', async () => {
    const { m1, listed, committed } = member('g-deleted', { 0: '3', 1: '5' });
    await m1.resolveOffsets();
    m1.resolveOffset({ topic: TOPIC, partition: 0, offset: '4' });
    expect(m1.topicDeleted(TOPIC)).toEqual(
      new Map([
        [0, '5'],
        [1, '5'],
      ]),
    );
    // Nothing of the old topic is committed any more, nor fetched from.
    expect(m1.uncommittedOffsets()).toEqual({ topics: [] });
    // Kafka deleted the group's offsets with the topic; a commit for partition 1 came after it was created again.
    delete committed[0];
    committed[1] = '1';
    listed.length = 0;
    await m1.resolveOffsets();
    expect(listed).toEqual([[{ topic: TOPIC, fromBeginning: true, partitions: [{ partition: 0 }] }]]);
    expect(m1.nextOffset(TOPIC, 0).toString()).toBe('0');
    expect(m1.nextOffset(TOPIC, 1).toString()).toBe('1');
    // Asked again while the topic is still missing: nothing left to forget.
    expect(member('g-deleted', {}).m1.topicDeleted(TOPIC)).toEqual(
      new Map([
        [0, undefined],
        [1, undefined],
      ]),
    );
  });

  it('without a deletion, a partition the group had from the start and never committed starts where fromBeginning says (log end)', async () => {
    const { m1, listed } = member('g-kept', { 1: '5' });
    await m1.resolveOffsets();
    expect(listed).toEqual([[{ topic: TOPIC, fromBeginning: false, partitions: [{ partition: 0 }] }]]);
    expect(m1.nextOffset(TOPIC, 0).toString()).toBe('6');
  });

  it('a partition without a committed offset (offsets deleted by an admin, say) is logged with where it starts; committed ones are not', async () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    try {
      const { m1 } = member('g-logged', { 1: '5' });
      await m1.resolveOffsets();
      await m1.resolveOffsets();
      expect(log.mock.calls.map(([message]) => message)).toEqual([
        'Group "g-logged" has no committed offset for t[0] at 6: starting there (the log end, fromBeginning: false)',
      ]);
    } finally {
      log.mockRestore();
    }
  });
});

describe('kafkajs OffsetManager (fixed): the lookup before each fetch', () => {
  it('asks the coordinator again only for an offset the cache holds as invalid', async () => {
    const { manager, offsetFetches } = memberOf('g-lookup', { 0: '3', 1: '5' }, [0, 1], 2);
    await manager.resolveOffsets();
    await manager.resolveOffsets();
    expect(offsetFetches).toHaveBeenCalledTimes(1);
    manager.committedOffsets()[TOPIC][1] = '-1';
    await manager.resolveOffsets();
    expect(offsetFetches).toHaveBeenCalledTimes(2);
    expect(offsetFetches.mock.calls[1][0]).toMatchObject({
      topics: [{ topic: TOPIC, partitions: [{ partition: 1 }] }],
    });
  });

  it('counts the partitions first seen once the metadata is known, even when every offset was resolved before', async () => {
    // The first lookup ran before any metadata: nothing counted then.
    const first = memberOf('g-late-metadata', { 0: '3', 1: '5' }, [0, 1]);
    await first.manager.resolveOffsets();
    first.cluster.brokerPool.metadata = { topicMetadata: [{ topic: TOPIC, partitionMetadata: [{}, {}] }] };
    await first.manager.resolveOffsets();
    // Partition 2, added later and not committed, starts at its earliest offset, not at the log end.
    const rejoined = memberOf('g-late-metadata', { 0: '3', 1: '5' }, [0, 1, 2], 3);
    await rejoined.manager.resolveOffsets();
    expect(rejoined.manager.nextOffset(TOPIC, 2).toString()).toBe('0');
  });
});

describe("kafkajs OffsetManager (fixed): the offset a fetch asks for, against released's nextOffset", () => {
  it('is the released nextOffset(topic, partition).toString() whatever the resolved and committed offsets hold', () => {
    const values = [
      undefined,
      '0',
      '15',
      '007',
      '-1',
      '',
      '999999999999999999',
      '9223372036854775807',
      '9223372036854775808',
    ];
    for (const resolved of values)
      for (const committed of [undefined, '12', '-1']) {
        const [fixed, released] = [Fixed, Released].map((OffsetManager) => {
          const manager = join(OffsetManager, client()(), coordinator({}), 'm1', [0]);
          manager.resolvedOffsets[TOPIC][0] = resolved;
          manager.committedOffsets()[TOPIC] = { 0: committed };
          const offset =
            OffsetManager === Fixed
              ? manager.nextFetchOffset(TOPIC, 0)
              : manager.nextOffset(TOPIC, 0).toString();
          return { offset, resolvedAfter: manager.resolvedOffsets[TOPIC][0] };
        });
        expect({ resolved, committed, ...fixed }).toEqual({ resolved, committed, ...released });
      }
  });
});

describe('first-seen partition counts per group id', () => {
  it('keeps a group that fetches, drops the one that fetched least recently: the groups remembered stay bounded', () => {
    const groups = new FirstSeenPartitions(2);
    groups.of('running').set(TOPIC, 3);
    for (let reader = 0; reader < 5; reader++) {
      // A reader's fresh group id per read, while the running group fetches in between.
      groups.of(`reader-${reader}`).set(TOPIC, 3);
      groups.of('running');
    }
    expect(groups.size).toBe(2);
    expect(groups.of('running').get(TOPIC)).toBe(3);
    expect(groups.of('reader-0').has(TOPIC)).toBe(false);
  });
});
