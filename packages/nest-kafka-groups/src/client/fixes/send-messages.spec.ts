import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';
import {
  certainlyNotAppended,
  decisiveRefusal,
  planPartitions,
  readProduceAnswer,
  withUnacknowledged,
} from './send-messages.js';

/**
 * The send() loop of kafkajs driven against in-memory brokers (a fake cluster with kafkajs's own retrier,
 * partitioner, lock and errors): the sequences of issue 9 finding 1, on the library's instance (fixed) and on the
 * installed kafkajs module as released (upstream, kept to show the bug).
 */
const upstream = createRequire(import.meta.url)('kafkajs/src/producer/sendMessages.js');
const fixed = kafkajsInternal('src/producer/sendMessages.js');
const createRetry = kafkajsInternal('src/retry');
const Lock = kafkajsInternal('src/utils/lock');
const { createErrorFromCode } = kafkajsInternal('src/protocol/error');
const { KafkaJSConnectionError } = kafkajsInternal('src/errors');
const NOT_LEADER_OR_FOLLOWER = 6;
const REQUEST_TIMED_OUT = 7;
const MESSAGE_TOO_LARGE = 10;

const TOPIC = 't';
const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

interface Written {
  partition: number;
  value: string;
  broker: number;
  sequence: number;
  producerId: string;
}

/**
 * Three partitions led by brokers 1, 2, 3. `onProduce` may fail a request or delay it, return 'answer lost' (the
 * batch is written and the request fails with a connection error), or refuse partitions in the answer (partition to
 * error code: those are not written).
 */
function cluster(
  onProduce: (
    broker: number,
    values: Map<string, number>,
  ) => Promise<void | 'answer lost' | Map<number, number>>,
) {
  const leaders = new Map<number, number>([
    [0, 1],
    [1, 2],
    [2, 3],
  ]);
  const written: Written[] = [];
  const locks = new Map<number, InstanceType<typeof Lock>>();
  const sequences = new Map<number, number>();
  const brokers = new Map<number, object>();
  const brokerFor = (nodeId: number) => {
    if (!brokers.has(nodeId)) {
      brokers.set(nodeId, {
        nodeId,
        produce: async ({ topicData, producerId }: any) => {
          const values = new Map<string, number>();
          for (const t of topicData) {
            for (const p of t.partitions)
              for (const m of p.messages) values.set(m.value, Number(p.partition));
          }
          const outcome = await onProduce(nodeId, values);
          const refused = outcome instanceof Map ? outcome : new Map<number, number>();
          for (const { partitions: entries } of topicData) {
            for (const { partition, messages, firstSequence } of entries) {
              if (refused.has(Number(partition))) continue;
              messages.forEach((message: { value: string }, i: number) =>
                written.push({
                  partition: Number(partition),
                  value: message.value,
                  broker: nodeId,
                  sequence: firstSequence + i,
                  producerId,
                }),
              );
            }
          }
          if (outcome === 'answer lost')
            throw new KafkaJSConnectionError('Connection error: read ECONNRESET');
          return {
            topics: topicData.map((t: any) => ({
              topicName: t.topic,
              partitions: t.partitions.map((p: any) => ({
                partition: p.partition,
                errorCode: refused.get(Number(p.partition)) ?? 0,
                baseOffset: '0',
              })),
            })),
          };
        },
      });
    }
    return brokers.get(nodeId);
  };
  const metadata = () => [...leaders].map(([partitionId, leader]) => ({ partitionId, leader }));
  const fakeCluster = {
    targetTopics: new Set([TOPIC]),
    refreshMetadataIfNecessary: async () => {},
    refreshMetadata: async () => {},
    addMultipleTargetTopics: async () => {},
    isConnected: () => true,
    connect: async () => {},
    removeBroker: () => {},
    findTopicPartitionMetadata: () => metadata(),
    findLeaderForPartitions: (_topic: string, partitions: number[]) => {
      const result: Record<number, number[]> = {};
      for (const partition of partitions)
        (result[leaders.get(Number(partition))!] ??= []).push(Number(partition));
      return result;
    },
    findBroker: async ({ nodeId }: { nodeId: number | string }) => brokerFor(Number(nodeId)),
  };
  let producerId = 1;
  const eosManager = {
    isTransactional: () => false,
    isInitialized: () => true,
    getProducerId: () => String(producerId),
    getProducerEpoch: () => 0,
    initProducerId: async () => {
      producerId++;
      sequences.clear();
    },
    getSequence: (_topic: string, partition: number) => sequences.get(partition) ?? 0,
    updateSequence: (_topic: string, partition: number, increment: number) =>
      sequences.set(partition, (sequences.get(partition) ?? 0) + increment),
    acquireBrokerLock: async (broker: { nodeId: number }) => {
      if (!locks.has(broker.nodeId)) locks.set(broker.nodeId, new Lock({ timeout: 10_000 }));
      await locks.get(broker.nodeId)!.acquire();
    },
    releaseBrokerLock: async (broker: { nodeId: number }) => locks.get(broker.nodeId)!.release(),
  };
  const retrier = createRetry({ retries: 5, initialRetryTime: 1, maxRetryTime: 5, factor: 0, multiplier: 1 });
  const partitioner = kafkajsInternal('src/producer/partitioners/default')();
  const send = (module: any, messages: Array<{ key?: string; value: string; partition?: number }>) =>
    module({ logger: quietLogger, cluster: fakeCluster, partitioner, eosManager, retrier })({
      acks: -1,
      timeout: 1000,
      topicMessages: [{ topic: TOPIC, messages }],
    });
  return { send, written, leaders, sequences };
}

/**
 * The sequence: the request that carries `b` fails once with NOT_LEADER, and `b`'s partition moves to the
 * broker that acknowledged `a`'s partition.
 */
function leaderOfSecondMessageMoves() {
  let failed = false;
  const partitionOf = new Map<string, number>();
  const setup = cluster(async (_broker, values) => {
    for (const [value, partition] of values) partitionOf.set(value, partition);
    if (!failed && values.has('b')) {
      failed = true;
      // Wait for the request of `a` (on another broker) to be acknowledged first.
      await new Promise((resolve) => setTimeout(resolve, 10));
      setup.leaders.set(partitionOf.get('b')!, setup.leaders.get(partitionOf.get('a')!)!);
      throw createErrorFromCode(NOT_LEADER_OR_FOLLOWER);
    }
  });
  return setup;
}

const values = (written: Written[]) => written.map((w) => w.value).sort();

/**
 * For the specs whose order of events is set by waits (a slow request acknowledged after the retry's backoff): fake
 * timers, which kafkajs's retrier and lock run on too, so the order is the clock's whatever the machine's load; the
 * event loop stays real.
 */
function onFakeClock(): void {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });
}
/** Moves the fake clock by `ms`, letting everything that was waiting for it run. */
const elapse = (ms: number) => jest.advanceTimersByTimeAsync(ms);
/** `promise`, awaited while the fake clock moves 1 ms at a time; fails after 10 s of it. */
async function settled<T>(promise: Promise<T>): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => (done = true));
  tracked.catch(() => undefined);
  for (let ms = 0; !done; ms++) {
    if (ms === 10_000) throw new Error('not settled after 10 s of the fake clock');
    await elapse(1);
  }
  return tracked;
}

describe('send() across a leader change (issue 9 finding 1)', () => {
  onFakeClock();

  it('writes every unkeyed message exactly once when the leader of one of its partitions moves', async () => {
    const { send, written } = leaderOfSecondMessageMoves();
    await settled(send(fixed, [{ value: 'a' }, { value: 'b' }]));
    expect(values(written)).toEqual(['a', 'b']);
  });

  it('upstream kafkajs 2.2.4 resolves the same send() with a message missing (kept to show the bug)', async () => {
    const { send, written } = leaderOfSecondMessageMoves();
    await settled(send(upstream, [{ value: 'a' }, { value: 'b' }]));
    // The retry re-partitions (round-robin moves on): `b` lands on `a`'s partition, whose broker already
    // answered, so it is never sent; `a` goes to the third partition and is written twice.
    expect(values(written)).toEqual(['a', 'a']);
  });

  it('does not send again a request that was still in flight when the retry started', async () => {
    let failed = false;
    let release!: () => void;
    const inFlight = new Promise<void>((resolve) => (release = resolve));
    const setup = cluster(async (broker) => {
      if (broker === 1 && !failed) await inFlight; // partition 0's first request is slow
      if (broker === 2 && !failed) {
        failed = true;
        setTimeout(release, 20); // ... and is acknowledged after the retry has started
        throw createErrorFromCode(NOT_LEADER_OR_FOLLOWER);
      }
    });
    await settled(
      setup.send(fixed, [
        { value: 'x', partition: 0 },
        { value: 'y', partition: 1 },
      ]),
    );
    await settled(inFlight); // whatever was still out has been written by now
    await elapse(20);
    expect(values(setup.written)).toEqual(['x', 'y']);
  });

  it('does not send an in-flight request to a new leader either: the retry waits for it to settle', async () => {
    let failed = false;
    let release!: () => void;
    const inFlight = new Promise<void>((resolve) => (release = resolve));
    const setup = cluster(async (broker) => {
      if (broker === 1 && !failed) await inFlight;
      if (broker === 2 && !failed) {
        failed = true;
        setup.leaders.set(0, 3); // partition 0 moves while its first request is still out
        setTimeout(release, 20);
        throw createErrorFromCode(NOT_LEADER_OR_FOLLOWER);
      }
    });
    await settled(
      setup.send(fixed, [
        { value: 'x', partition: 0 },
        { value: 'y', partition: 1 },
      ]),
    );
    await settled(inFlight); // whatever was still out has been written by now
    await elapse(20);
    expect(values(setup.written)).toEqual(['x', 'y']);
  });

  it('upstream kafkajs 2.2.4 sends that in-flight request again (kept to show the bug)', async () => {
    let failed = false;
    let release!: () => void;
    const inFlight = new Promise<void>((resolve) => (release = resolve));
    const setup = cluster(async (broker) => {
      if (broker === 1 && !failed) await inFlight;
      if (broker === 2 && !failed) {
        failed = true;
        setTimeout(release, 20);
        throw createErrorFromCode(NOT_LEADER_OR_FOLLOWER);
      }
    });
    await settled(
      setup.send(upstream, [
        { value: 'x', partition: 0 },
        { value: 'y', partition: 1 },
      ]),
    );
    expect(values(setup.written)).toEqual(['x', 'x', 'y']);
  });
});

describe('sequence numbers after a failed request (RELIABILITY finding 10)', () => {
  const sent = (written: Written[]) => written.map((w) => `${w.value}:${w.sequence}`);

  it('a retry after a lost answer sends the batch with its first numbers; the next send() takes the following ones', async () => {
    let lost = false;
    const setup = cluster(async () => {
      if (!lost) {
        lost = true;
        return 'answer lost';
      }
    });
    await setup.send(fixed, [{ value: 'a', partition: 0 }]);
    await setup.send(fixed, [{ value: 'b', partition: 0 }]);
    // The broker drops `a:0` the second time as a duplicate; `b` has numbers of its own.
    expect(sent(setup.written)).toEqual(['a:0', 'a:0', 'b:1']);
    expect(setup.sequences.get(0)).toBe(2);
  });

  it('upstream kafkajs 2.2.4 takes the numbers back: another send() in between reuses them (kept to show the bug)', async () => {
    let lost = false;
    let other: Promise<unknown> | undefined;
    const setup = cluster(async (_broker, values) => {
      if (!lost && values.has('a')) {
        lost = true;
        // Another send() to the same partition, out while the retry of `a` waits.
        other = setup.send(upstream, [{ value: 'b', partition: 0 }]);
        return 'answer lost';
      }
    });
    await setup.send(upstream, [{ value: 'a', partition: 0 }]);
    await other;
    // `b:0` repeats the numbers of the appended `a:0`: a broker acknowledges it without writing it.
    expect(sent(setup.written)).toEqual(['a:0', 'b:0', 'a:1']);
  });

  it('the same with the fix: the other send() waits for the retry, then takes the next numbers', async () => {
    let lost = false;
    let other: Promise<unknown> | undefined;
    const setup = cluster(async (_broker, values) => {
      if (!lost && values.has('a')) {
        lost = true;
        other = setup.send(fixed, [{ value: 'b', partition: 0 }]);
        return 'answer lost';
      }
    });
    await setup.send(fixed, [{ value: 'a', partition: 0 }]);
    await other;
    expect(sent(setup.written)).toEqual(['a:0', 'a:0', 'b:1']);
  });

  it('a batch refused before the append gives its numbers back when no later batch took any', async () => {
    const setup = cluster(async (_broker, values) => {
      if (values.has('a')) throw createErrorFromCode(MESSAGE_TOO_LARGE);
    });
    await expect(setup.send(fixed, [{ value: 'a', partition: 0 }])).rejects.toThrow();
    await setup.send(fixed, [{ value: 'b', partition: 0 }]);
    expect(sent(setup.written)).toEqual(['b:0']);
  });

  it('a batch whose answer was lost keeps its numbers until its send() fails; the next send() goes under a new producer id', async () => {
    const setup = cluster(async (_broker, values) => (values.has('a') ? 'answer lost' : undefined));
    await expect(setup.send(fixed, [{ value: 'a', partition: 0 }])).rejects.toThrow();
    await setup.send(fixed, [{ value: 'b', partition: 0 }]);
    // Every retry of `a` with the numbers of its first request; `b` from 0 under a new id, so the broker neither
    // takes it for a duplicate of `a` nor waits for `a`'s numbers.
    const ids = (value: string) =>
      new Set(setup.written.filter((w) => w.value === value).map((w) => w.producerId));
    expect(new Set(sent(setup.written).slice(0, -1))).toEqual(new Set(['a:0']));
    expect(sent(setup.written).at(-1)).toBe('b:0');
    expect(ids('a')).toEqual(new Set(['1']));
    expect(ids('b')).toEqual(new Set(['2']));
  });
});

describe('a send() that failed while another of its requests waited', () => {
  onFakeClock();

  /**
   * `x` to partition 0 (broker 1) is slow; meanwhile a send() of `y` to partition `yPartition` and `z` to partition 1
   * (broker 2) fails at once on broker 2 (not retriable), its request with `y` waiting for broker 1.
   */
  async function failsWhileWaiting(yPartition: number) {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const setup = cluster(async (_broker, values) => {
      if (values.has('x')) await slow;
      if (values.has('z')) throw createErrorFromCode(MESSAGE_TOO_LARGE);
    });
    setup.leaders.set(2, 1);
    const x = setup.send(fixed, [{ value: 'x', partition: 0 }]);
    await elapse(5);
    await expect(
      settled(
        setup.send(fixed, [
          { value: 'y', partition: yPartition },
          { value: 'z', partition: 1 },
        ]),
      ),
    ).rejects.toThrow();
    release();
    await settled(x);
    await elapse(20);
    return values(setup.written);
  }

  it('its request waiting for the partition sends nothing once the send() failed', async () => {
    expect(await failsWhileWaiting(0)).toEqual(['x']);
  });

  it('its request waiting for the broker sends nothing once the send() failed', async () => {
    expect(await failsWhileWaiting(2)).toEqual(['x']);
  });
});

describe('a Produce answer read per partition (RELIABILITY finding 10)', () => {
  const sent = (written: Written[]) => written.map((w) => `${w.value}:${w.sequence}`);

  it('a partition refused in the answer is sent again alone; the one appended beside it is sent once', async () => {
    const requests: string[][] = [];
    let refusals = 2;
    const setup = cluster(async (_broker, values) => {
      requests.push([...values.keys()]);
      if (values.has('y') && refusals-- > 0) return new Map([[1, NOT_LEADER_OR_FOLLOWER]]);
    });
    setup.leaders.set(1, 1); // both partitions on broker 1: one request
    await setup.send(fixed, [
      { value: 'x', partition: 0 },
      { value: 'y', partition: 1 },
    ]);
    expect(requests).toEqual([['x', 'y'], ['y'], ['y']]);
    // The refusal came before the append: `y` keeps its first numbers.
    expect(sent(setup.written)).toEqual(['x:0', 'y:0']);
  });

  it("another send() to the appended partition goes while the refused one's retries go on", async () => {
    let bWritten = false;
    const setup = cluster(async (_broker, values) => {
      if (values.has('b')) bWritten = true;
      // `y` is refused until `b` (a later send() to `x`'s partition) is in the log.
      if (values.has('y') && !bWritten) return new Map([[1, NOT_LEADER_OR_FOLLOWER]]);
    });
    setup.leaders.set(1, 1);
    const a = setup.send(fixed, [
      { value: 'x', partition: 0 },
      { value: 'y', partition: 1 },
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    const b = setup.send(fixed, [{ value: 'b', partition: 0 }]);
    await Promise.all([a, b]);
    expect(sent(setup.written)).toEqual(['x:0', 'b:1', 'y:0']);
  });

  it('a partition refused for good fails the send() naming it; the appended one stays written once and in step', async () => {
    const setup = cluster(async (_broker, values) =>
      values.has('y') ? new Map([[1, MESSAGE_TOO_LARGE]]) : undefined,
    );
    setup.leaders.set(1, 1);
    await expect(
      setup.send(fixed, [
        { value: 'x', partition: 0 },
        { value: 'y', partition: 1 },
      ]),
    ).rejects.toMatchObject({
      name: 'KafkaJSProtocolError',
      type: 'MESSAGE_TOO_LARGE',
      retriable: false,
      topic: TOPIC,
      partition: 1,
      message: expect.stringContaining(`(topic "${TOPIC}", partition 1)`),
    });
    await setup.send(fixed, [
      { value: 'x2', partition: 0 },
      { value: 'z', partition: 1 },
    ]);
    // `y`'s numbers given back (refused before the append), so `z` takes 0; no new producer id.
    expect(sent(setup.written)).toEqual(['x:0', 'x2:1', 'z:0']);
    expect(new Set(setup.written.map((w) => w.producerId))).toEqual(new Set(['1']));
  });

  it('a partition answered OUT_OF_ORDER_SEQUENCE_NUMBER: a new producer id, the appended one not sent again', async () => {
    let refused = false;
    const setup = cluster(async (_broker, values) => {
      if (values.has('y') && !refused) {
        refused = true;
        return new Map([[1, 45]]); // OUT_OF_ORDER_SEQUENCE_NUMBER
      }
    });
    setup.leaders.set(1, 1);
    await setup.send(fixed, [
      { value: 'x', partition: 0 },
      { value: 'y', partition: 1 },
    ]);
    expect(setup.written.map((w) => `${w.value}:${w.sequence}:${w.producerId}`)).toEqual(['x:0:1', 'y:0:2']);
  });
});

describe('readProduceAnswer', () => {
  const errorOf = (code: number, topic: string, partition: number) => `${code}@${topic}/${partition}`;

  it('splits the answer by partition; DUPLICATE_SEQUENCE_NUMBER counts as written, as in Java', () => {
    const answer = {
      topics: [
        {
          topicName: 'a',
          partitions: [
            { partition: 0, errorCode: 0, baseOffset: '5' },
            { partition: 1, errorCode: 3, baseOffset: '-1' },
          ],
        },
        { topicName: 'b', partitions: [{ partition: 2, errorCode: 46, baseOffset: '-1' }] },
      ],
    };
    expect(readProduceAnswer(answer, errorOf)).toEqual({
      accepted: [
        { topicName: 'a', partition: 0, errorCode: 0, baseOffset: '5' },
        { topicName: 'b', partition: 2, errorCode: 46, baseOffset: '-1' },
      ],
      refused: [{ topic: 'a', partition: 1, error: '3@a/1' }],
    });
  });

  it('the decisive refusal is the first one not retriable, else the first', () => {
    const retriable = { retriable: true, id: 1 };
    const final = { retriable: false, id: 2 };
    expect(decisiveRefusal([{ error: retriable }, { error: final }])).toBe(final);
    expect(decisiveRefusal([{ error: retriable }, { error: { retriable: true, id: 3 } }])).toBe(retriable);
  });
});

describe('withUnacknowledged', () => {
  const plan = planPartitions(
    't',
    [],
    [0, 1, 2].map((partition) => ({ partition })),
    ({ message }) => (message as { partition: number }).partition,
  );

  it('names the partitions not acknowledged that the message does not name already', () => {
    const acknowledged = new Map([['t\u00000', {}]]);
    expect(withUnacknowledged('No metadata', ['t'], [plan], acknowledged)).toBe(
      'No metadata (not acknowledged: topic "t", partition 1; topic "t", partition 2)',
    );
    expect(withUnacknowledged('refused (topic "t", partition 2)', ['t'], [plan], acknowledged)).toBe(
      'refused (topic "t", partition 2) (also not acknowledged: topic "t", partition 1)',
    );
    expect(
      withUnacknowledged(
        'refused (topic "t", partition 2)',
        ['t'],
        [plan],
        new Map([...acknowledged, ['t\u00001', {}]]),
      ),
    ).toBe('refused (topic "t", partition 2)');
  });

  it('does not take partition 10 for partition 1', () => {
    const wide = planPartitions(
      't',
      [],
      [1, 10].map((partition) => ({ partition })),
      ({ message }) => (message as { partition: number }).partition,
    );
    expect(withUnacknowledged('refused (topic "t", partition 10)', ['t'], [wide], new Map())).toBe(
      'refused (topic "t", partition 10) (also not acknowledged: topic "t", partition 1)',
    );
  });

  it('names the topics when the send() failed before picking partitions', () => {
    expect(withUnacknowledged('No metadata', ['t', 'u'], undefined, new Map())).toBe(
      'No metadata (not acknowledged: topic "t"; topic "u")',
    );
  });
});

describe('certainlyNotAppended', () => {
  it('is true for a refusal before the append on a one-partition request, and for a request never written', () => {
    expect(certainlyNotAppended(createErrorFromCode(NOT_LEADER_OR_FOLLOWER), 1)).toBe(true);
    expect(certainlyNotAppended(new KafkaJSConnectionError('Not connected'), 3)).toBe(true);
  });

  it('is false when the batch may be in the log: no answer, an answer after the append, or another partition', () => {
    expect(certainlyNotAppended(new KafkaJSConnectionError('Connection error: read ECONNRESET'), 1)).toBe(
      false,
    );
    expect(certainlyNotAppended(createErrorFromCode(REQUEST_TIMED_OUT), 1)).toBe(false);
    // A response names its first failed partition only: the request's other partitions may be appended.
    expect(certainlyNotAppended(createErrorFromCode(NOT_LEADER_OR_FOLLOWER), 2)).toBe(false);
    expect(certainlyNotAppended(undefined, 1)).toBe(false);
  });
});

describe('planPartitions', () => {
  it('calls the partitioner once per message and keeps the send order within a partition', () => {
    const calls: string[] = [];
    const partitioner = ({ message }: { message: unknown }) => {
      calls.push((message as { value: string }).value);
      return calls.length % 2;
    };
    const plan = planPartitions(
      't',
      [],
      ['a', 'b', 'c', 'd'].map((value) => ({ value })),
      partitioner,
    );
    expect(calls).toEqual(['a', 'b', 'c', 'd']);
    expect([...plan.messagesPerPartition].map(([p, ms]) => [p, ms.map((m) => m.value)])).toEqual([
      [1, ['a', 'c']],
      [0, ['b', 'd']],
    ]);
  });
});
