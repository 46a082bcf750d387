import { describe, expect, test } from '@jest/globals';
import type { KafkaMessage } from '../client/kafkajs.js';
import { KafkaBatchContext } from './kafka-batch.context.js';

function message(offset: string, key: string | null, headers: KafkaMessage['headers'] = {}): KafkaMessage {
  return {
    offset,
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from('{}'),
    timestamp: `17000000000${offset}`,
    attributes: 0,
    headers,
  } as KafkaMessage;
}

describe('KafkaBatchContext', () => {
  const messages = [
    message('10', 'a', { trace: Buffer.from('t-10') }),
    message('11', null),
    message('12', 'c', { tags: [Buffer.from('x'), Buffer.from('y')] }),
  ];
  const context = new KafkaBatchContext('orders', 2, messages, 'billing', 2, new AbortController().signal);

  test('describes the call: partition, size, first and last offsets, attempt', () => {
    expect(context).toMatchObject({ topic: 'orders', partition: 2, groupId: 'billing', attempt: 2, size: 3 });
    expect(context.firstOffset).toBe('10');
    expect(context.lastOffset).toBe('12');
  });

  test('records[i] describes payload element i: offset, key, timestamp, decoded headers', () => {
    const records = context.records;
    expect(records.map((r) => r.offset)).toEqual(['10', '11', '12']);
    expect(records.map((r) => r.key)).toEqual(['a', undefined, 'c']);
    expect(records[0].timestamp).toBe('1700000000010');
    expect({ ...records[0].headers }).toEqual({ trace: 't-10' });
    expect({ ...records[2].headers }).toEqual({ tags: ['x', 'y'] });
    expect(records[1].message).toBe(messages[1]);
    // Built once: the same objects on every access.
    expect(context.records).toBe(records);
  });
});
