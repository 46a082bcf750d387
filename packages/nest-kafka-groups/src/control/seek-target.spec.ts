import { describe, expect, test } from '@jest/globals';
import { KafkaSeekTargetError } from '../errors/kafka-seek-target.error.js';
import { KafkaUnknownGroupTopicError } from '../errors/kafka-unknown-group-topic.error.js';
import { type KafkaSeekTarget, planSeek, seekOffsets } from './seek-target.js';

const TOPICS = ['orders', 'refunds'];
const RANGES = [
  { partition: 1, low: '5', high: '40' },
  { partition: 0, low: '0', high: '30' },
];

function seekError(target: unknown): KafkaSeekTargetError {
  try {
    planSeek('billing', TOPICS, target as KafkaSeekTarget);
  } catch (error) {
    expect(error).toBeInstanceOf(KafkaSeekTargetError);
    return error as KafkaSeekTargetError;
  }
  throw new Error(`accepted ${JSON.stringify(target)}`);
}

describe('planSeek', () => {
  test('normalises each kind of target', () => {
    expect(planSeek('billing', TOPICS, { topic: 'orders', offset: 12 })).toEqual({
      topic: 'orders',
      kind: 'offset',
      offset: '12',
    });
    expect(
      planSeek('billing', TOPICS, { topic: 'orders', partition: 0, offset: '9007199254740993' }),
    ).toEqual({
      topic: 'orders',
      partition: 0,
      kind: 'offset',
      offset: '9007199254740993',
    });
    expect(planSeek('billing', TOPICS, { topic: 'orders', offset: 'earliest' })).toMatchObject({
      kind: 'earliest',
    });
    expect(planSeek('billing', TOPICS, { topic: 'orders', offset: 'latest' })).toMatchObject({
      kind: 'latest',
    });
    expect(planSeek('billing', TOPICS, { topic: 'refunds', timestamp: new Date(1_700_000_000_000) })).toEqual(
      {
        topic: 'refunds',
        kind: 'timestamp',
        timestamp: 1_700_000_000_000,
      },
    );
  });

  test('a topic the group does not consume names the group and its topics', () => {
    expect(() => planSeek('billing', TOPICS, { topic: 'other', offset: 1 })).toThrow(
      new KafkaUnknownGroupTopicError('billing', 'other', TOPICS),
    );
    expect(() => planSeek('billing', TOPICS, { topic: 'other', offset: 1 })).toThrow(
      'Consumer group "billing" does not consume topic "other" (its topics: "orders", "refunds")',
    );
  });

  test.each([
    [{ topic: 'orders' }, 'offset / timestamp', /both missing/],
    [{ topic: 'orders', offset: 1, timestamp: 2 }, 'offset / timestamp', /both given/],
    [{ topic: 'orders', offset: -1 }, 'offset', /got -1/],
    [{ topic: 'orders', offset: 1.5 }, 'offset', /got 1.5/],
    [{ topic: 'orders', offset: '012' }, 'offset', /got "012"/],
    [{ topic: 'orders', offset: 'first' }, 'offset', /got "first"/],
    [{ topic: 'orders', offset: 2 ** 60 }, 'offset', /decimal string/],
    [{ topic: 'orders', timestamp: 'yesterday' }, 'timestamp', /got "yesterday"/],
    [{ topic: 'orders', timestamp: new Date('not a date') }, 'timestamp', /valid Date/],
    [{ topic: 'orders', partition: -1, offset: 0 }, 'partition', /got -1/],
    [{ topic: 'orders', partition: '1', offset: 0 }, 'partition', /got "1"/],
    [{ topic: 7, offset: 0 }, 'topic', /got 7/],
    [null, 'the target', /must be an object/],
  ])('refuses %j, naming the group and %s', (target, field, problem) => {
    const error = seekError(target);
    expect(error.groupId).toBe('billing');
    expect(error.field).toBe(field);
    expect(error.message).toMatch(/^Cannot seek consumer group "billing": /);
    expect(error.message).toMatch(problem);
  });
});

describe('seekOffsets', () => {
  const plan = (target: KafkaSeekTarget) => planSeek('billing', TOPICS, target);

  test('every partition, in partition order, unless one is named', () => {
    expect(seekOffsets('billing', plan({ topic: 'orders', offset: 'earliest' }), RANGES)).toEqual([
      { partition: 0, offset: '0' },
      { partition: 1, offset: '5' },
    ]);
    expect(seekOffsets('billing', plan({ topic: 'orders', partition: 1, offset: 'latest' }), RANGES)).toEqual(
      [{ partition: 1, offset: '40' }],
    );
  });

  test('a timestamp takes the offsets the broker found, the log end where it found none', () => {
    const offsets = seekOffsets('billing', plan({ topic: 'orders', timestamp: 1 }), RANGES, [
      { partition: 0, offset: '17' },
    ]);
    expect(offsets).toEqual([
      { partition: 0, offset: '17' },
      { partition: 1, offset: '40' },
    ]);
  });

  test('an explicit offset must lie within the log of each partition, the log end included', () => {
    expect(seekOffsets('billing', plan({ topic: 'orders', offset: 30 }), RANGES)).toEqual([
      { partition: 0, offset: '30' },
      { partition: 1, offset: '30' },
    ]);
    expect(() => seekOffsets('billing', plan({ topic: 'orders', offset: 3 }), RANGES)).toThrow(
      'Cannot seek consumer group "billing": offset 3 is outside orders[1], which holds offsets 5 to 40 (log end)',
    );
    expect(() => seekOffsets('billing', plan({ topic: 'orders', partition: 0, offset: 31 }), RANGES)).toThrow(
      'Cannot seek consumer group "billing": offset 31 is outside orders[0], which holds offsets 0 to 30 (log end as ' +
        'the group reads it: the last stable offset while a transaction is open there, which holds back what ' +
        'follows it until it ends)',
    );
  });

  test('a partition the topic does not have', () => {
    expect(() => seekOffsets('billing', plan({ topic: 'orders', partition: 2, offset: 0 }), RANGES)).toThrow(
      'Cannot seek consumer group "billing": partition 2 does not exist: topic "orders" has partitions 0..1',
    );
  });
});
