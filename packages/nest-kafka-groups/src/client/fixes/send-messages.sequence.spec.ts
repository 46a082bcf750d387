import { describe, expect, it } from '@jest/globals';
import { kafkajsInternal } from '../kafkajs.js';

/**
 * The carried send() against an in-memory partition that applies a broker's idempotence rules (apache/kafka
 * ProducerStateManager / ProducerAppendInfo, same producer id and epoch): a batch whose first and last sequence
 * match one of the last 5 batches appended is a duplicate (acknowledged, not written); otherwise its first
 * sequence must follow the last one appended, else OUT_OF_ORDER_SEQUENCE_NUMBER.
 */
const fixed = kafkajsInternal('src/producer/sendMessages.js');
const createRetry = kafkajsInternal('src/retry');
const Lock = kafkajsInternal('src/utils/lock');
const { createErrorFromCode } = kafkajsInternal('src/protocol/error');
const { KafkaJSConnectionError } = kafkajsInternal('src/errors');
const OUT_OF_ORDER_SEQUENCE_NUMBER = 45;
const BATCHES_TO_RETAIN = 5;
const TOPIC = 't';
const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** What happens to a request: answered, appended but its answer lost, or lost before the broker read it. */
type Fate = 'answered' | 'answer lost' | 'lost before append';

function partitionZero(fateOf: (values: string[]) => Fate, retryTimeMs: number, transactional = false) {
  const log: string[] = [];
  /** The broker's state per producer id: its epoch, last sequence appended and last 5 batches. */
  const producers = new Map<
    string,
    { epoch: number; lastSequence: number; retained: Array<{ first: number; last: number }> }
  >();
  const producer = { id: 1, epoch: 0, initProducerIdCalls: 0 };
  const lock = new Lock({ timeout: 10_000 });
  let sequence = 0;

  const broker = {
    nodeId: 1,
    produce: async ({ topicData, producerId, producerEpoch }: any) => {
      const { messages, firstSequence } = topicData[0].partitions[0];
      let state = producers.get(producerId);
      if (!state || producerEpoch > state.epoch) {
        // A new producer id or epoch starts its sequences at 0; older batches are no duplicates of it.
        if (firstSequence !== 0) throw createErrorFromCode(OUT_OF_ORDER_SEQUENCE_NUMBER);
        state = { epoch: producerEpoch, lastSequence: -1, retained: [] };
        producers.set(producerId, state);
      }
      const { retained } = state;
      const values: string[] = messages.map((m: { value: string }) => m.value);
      const fate = fateOf(values);
      if (fate === 'lost before append')
        throw new KafkaJSConnectionError('Connection error: read ECONNRESET');
      const last = firstSequence + values.length - 1;
      const duplicate = retained.some((b) => b.first === firstSequence && b.last === last);
      if (!duplicate) {
        if (firstSequence !== state.lastSequence + 1) throw createErrorFromCode(OUT_OF_ORDER_SEQUENCE_NUMBER);
        log.push(...values);
        state.lastSequence = last;
        retained.push({ first: firstSequence, last });
        if (retained.length > BATCHES_TO_RETAIN) retained.shift();
      }
      if (fate === 'answer lost') throw new KafkaJSConnectionError('Connection error: read ECONNRESET');
      return {
        topics: [
          {
            topicName: TOPIC,
            partitions: [{ partition: 0, errorCode: 0, baseOffset: '0' }],
          },
        ],
      };
    },
  };
  const cluster = {
    targetTopics: new Set([TOPIC]),
    refreshMetadataIfNecessary: async () => {},
    refreshMetadata: async () => {},
    addMultipleTargetTopics: async () => {},
    isConnected: () => true,
    connect: async () => {},
    removeBroker: () => {},
    findTopicPartitionMetadata: () => [{ partitionId: 0, leader: 1 }],
    findLeaderForPartitions: () => ({ 1: [0] }),
    findBroker: async () => broker,
  };
  const eosManager = {
    isTransactional: () => transactional,
    getTransactionalId: () => 'tx',
    addPartitionsToTransaction: async () => {},
    isInitialized: () => true,
    getProducerId: () => String(producer.id),
    getProducerEpoch: () => producer.epoch,
    /** kafkajs's initProducerId for a non-transactional producer: a new id, epoch 0, every sequence at 0. */
    initProducerId: async () => {
      producer.initProducerIdCalls++;
      producer.id++;
      producer.epoch = 0;
      sequence = 0;
    },
    getSequence: () => sequence,
    updateSequence: (_topic: string, _partition: number, increment: number) => (sequence += increment),
    acquireBrokerLock: () => lock.acquire(),
    releaseBrokerLock: () => lock.release(),
  };
  const retrier = createRetry({
    retries: 3,
    initialRetryTime: retryTimeMs,
    maxRetryTime: retryTimeMs,
    factor: 0,
    multiplier: 1,
  });
  const partitioner = kafkajsInternal('src/producer/partitioners/default')();
  const send = (value: string): Promise<unknown> =>
    fixed({ logger: quietLogger, cluster, partitioner, eosManager, retrier })({
      acks: -1,
      timeout: 1000,
      topicMessages: [{ topic: TOPIC, messages: [{ value, partition: 0 }] }],
    });
  /** What kafkajs's initProducerId does for a transactional producer: the epoch bumped, every sequence at 0. */
  const bumpEpoch = () => {
    producer.epoch++;
    sequence = 0;
  };
  return { send, log, bumpEpoch, producer };
}

describe('sequence numbers kept across retries, with concurrent send() calls to the partition', () => {
  it('a batch appended whose answer was lost is acknowledged on retry after 4 later batches (within the window)', async () => {
    let others: Promise<unknown> | undefined;
    const setup = partitionZero((values) => {
      if (values[0] === 'a' && others === undefined) {
        others = Promise.all(['b', 'c', 'd', 'e'].map((v) => setup.send(v)));
        return 'answer lost';
      }
      return 'answered';
    }, 200);
    await expect(setup.send('a')).resolves.toBeDefined();
    await others;
    expect(setup.log).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  // The broker keeps the last 5 batches of a producer per partition for duplicate detection. Other send() calls to
  // the partition wait while the retry of a batch whose answer was lost waits out its backoff (as the Java client
  // retries a partition's batches first), so the retry is answered as the duplicate it is.
  it('a batch appended whose answer was lost, 6 later sends while it waits: each written once, the retry first', async () => {
    let others: Promise<unknown> | undefined;
    const setup = partitionZero((values) => {
      if (values[0] === 'a' && others === undefined) {
        others = Promise.all(['b', 'c', 'd', 'e', 'f', 'g'].map((v) => setup.send(v)));
        return 'answer lost';
      }
      return 'answered';
    }, 200);
    await expect(setup.send('a')).resolves.toBeDefined();
    await others;
    expect(setup.log).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(setup.producer.initProducerIdCalls).toBe(0);
  });

  it('another send() to the partition while a batch lost before the append waits to retry goes after it, under the same producer id', async () => {
    let lost = false;
    let other: Promise<unknown> | undefined;
    const setup = partitionZero((values) => {
      if (values[0] === 'a' && !lost) {
        lost = true;
        other = setup.send('b');
        return 'lost before append';
      }
      return 'answered';
    }, 200);
    await expect(setup.send('a')).resolves.toBeDefined();
    await expect(other).resolves.toBeDefined();
    expect(setup.log).toEqual(['a', 'b']);
    expect(setup.producer.initProducerIdCalls).toBe(0);
  });

  it('a send() that gave up with its batch maybe unwritten: the next sends to the partition are written, not refused for good', async () => {
    const setup = partitionZero((values) => (values[0] === 'b' ? 'lost before append' : 'answered'), 10);
    await setup.send('a');
    await expect(setup.send('b')).rejects.toThrow();
    await expect(setup.send('c')).resolves.toBeDefined();
    await expect(setup.send('d')).resolves.toBeDefined();
    expect(setup.log).toEqual(['a', 'c', 'd']);
    expect(setup.producer.initProducerIdCalls).toBe(1);
  });

  it('a retry after the epoch changed takes the new epoch numbers from 0, not the ones kept from the old epoch', async () => {
    let bumped = false;
    const setup = partitionZero((values) => {
      if (values[0] === 'b' && !bumped) {
        bumped = true;
        setup.bumpEpoch();
        return 'answer lost';
      }
      return 'answered';
    }, 50);
    await setup.send('a');
    await expect(setup.send('b')).resolves.toBeDefined();
    await setup.send('c');
    // `b` kept sequence 1 of epoch 0; its retry goes out as sequence 0 of epoch 1 (written again: a broker dedupes
    // within an epoch only, as with the Java client), and `c` follows it.
    expect(setup.log).toEqual(['a', 'b', 'b', 'c']);
  });

  it('a transactional producer keeps its producer id after a give-up: the next send is refused, left to the abort', async () => {
    const setup = partitionZero(
      (values) => (values[0] === 'b' ? 'lost before append' : 'answered'),
      10,
      true,
    );
    await setup.send('a');
    await expect(setup.send('b')).rejects.toThrow();
    await expect(setup.send('c')).rejects.toThrow(/out of order/);
    expect(setup.log).toEqual(['a']);
    expect(setup.producer.initProducerIdCalls).toBe(0);
  });
});
