import { describe, expect, test } from '@jest/globals';
import { hasLostSequence, ReplaceableProducer } from './replaceable-producer.js';

describe('hasLostSequence', () => {
  test('recognises the broker errors after which the idempotent sequences are out of step', () => {
    for (const type of ['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']) {
      expect(hasLostSequence({ type })).toBe(true);
    }
  });

  test('looks through the retry errors kafkajs wraps them in', () => {
    const protocolError = { type: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
    expect(hasLostSequence({ name: 'KafkaJSNumberOfRetriesExceeded', originalError: protocolError })).toBe(
      true,
    );
    expect(hasLostSequence(new Error('send failed', { cause: protocolError }))).toBe(true);
  });

  test('other failures keep the producer', () => {
    expect(hasLostSequence({ type: 'UNKNOWN_TOPIC_OR_PARTITION' })).toBe(false);
    expect(hasLostSequence(new Error('connection refused'))).toBe(false);
    expect(hasLostSequence(undefined)).toBe(false);
  });
});

/** A stand-in for a kafkajs producer: counts its connects and disconnects. */
class FakeProducer {
  connects = 0;
  disconnects = 0;
  constructor(
    readonly id: number,
    private readonly connectResult: () => Promise<void> = async () => {},
  ) {}
  connect(): Promise<void> {
    this.connects++;
    return this.connectResult();
  }
  async disconnect(): Promise<void> {
    this.disconnects++;
  }
}

const lostSequence = Object.assign(new Error('out of order'), { type: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
const quietLogger = { warn: () => undefined } as never;

function replaceable(connectResult?: () => Promise<void>) {
  const created: FakeProducer[] = [];
  const producer = new ReplaceableProducer(
    () => {
      const fake = new FakeProducer(created.length, connectResult);
      created.push(fake);
      return fake;
    },
    quietLogger,
    'producer',
  );
  return { producer, created };
}

describe('ReplaceableProducer', () => {
  test('a send that failed with a lost sequence replaces the producer; the error reaches the caller as it was', async () => {
    const { producer, created } = replaceable();
    await expect(producer.send(() => Promise.reject(lostSequence))).rejects.toBe(lostSequence);
    expect(created).toHaveLength(2);
    expect(producer.current).toBe(created[1]);
    // Disconnected at the replacement, and again as the failed send settled.
    expect(created[0].disconnects).toBe(2);
    const used = await producer.send(async (p) => p);
    expect(used).toBe(created[1]);
  });

  test('other failures keep the producer', async () => {
    const { producer, created } = replaceable();
    await expect(producer.send(() => Promise.reject(new Error('connection refused')))).rejects.toThrow();
    expect(created).toHaveLength(1);
    expect(created[0].disconnects).toBe(0);
  });

  test('concurrent failures of one producer replace it once; each of its sends closes it again as it settles', async () => {
    const { producer, created } = replaceable();
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const first = producer.send(() => Promise.reject(lostSequence));
    const second = producer.send(async () => {
      await slow;
      throw lostSequence;
    });
    const third = producer.send(async () => {
      await slow;
      return 'written';
    });
    await expect(first).rejects.toBe(lostSequence);
    expect(created).toHaveLength(2);
    expect(created[0].disconnects).toBe(2);
    release();
    await expect(second).rejects.toBe(lostSequence);
    await expect(third).resolves.toBe('written');
    expect(created).toHaveLength(2);
    expect(created[0].disconnects).toBe(4);
    expect(created[1].disconnects).toBe(0);
  });

  test('connects the current producer once; a failed connect is started again by the next call', async () => {
    let fail = true;
    const { producer, created } = replaceable(async () => {
      if (fail) throw new Error('broker down');
    });
    await expect(producer.connect()).rejects.toThrow('broker down');
    expect(producer.connection).toBeUndefined();
    expect(producer.connected).toBe(false);
    fail = false;
    await Promise.all([producer.connect(), producer.connect()]);
    expect(created[0].connects).toBe(2);
    expect(producer.connected).toBe(true);
  });

  test('after a replacement the new producer connects anew; a late end of the old connect changes nothing', async () => {
    let finishOld!: (error?: Error) => void;
    let calls = 0;
    const { producer, created } = replaceable(() => {
      calls++;
      return calls === 1
        ? new Promise<void>((resolve, reject) => (finishOld = (e) => (e ? reject(e) : resolve())))
        : Promise.resolve();
    });
    const oldConnect = producer.connect();
    await expect(producer.send(() => Promise.reject(lostSequence))).rejects.toBe(lostSequence);
    expect(producer.connection).toBeUndefined();
    await producer.connect();
    expect(created[1].connects).toBe(1);
    expect(producer.connected).toBe(true);
    finishOld(new Error('old producer disconnected'));
    await expect(oldConnect).rejects.toThrow();
    expect(producer.connection).toBeDefined();
    expect(producer.connected).toBe(true);
  });

  test('forgetConnection: the next connect starts one again', async () => {
    const { producer, created } = replaceable();
    await producer.connect();
    producer.forgetConnection();
    expect(producer.connection).toBeUndefined();
    expect(producer.connected).toBe(false);
    await producer.connect();
    expect(created[0].connects).toBe(2);
  });
});
