import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';

/** The batch against kafkajs 2.2.4's as released, on the same partition data. */
const Fixed = kafkajsInternal('src/consumer/batch.js');
const Released = createRequire(import.meta.url)('kafkajs/src/consumer/batch.js');

interface Message {
  offset: string;
  key: Buffer | null;
  isControlRecord: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}

const message = (offset: string, extra: Partial<Message> = {}): Message => ({
  offset,
  key: null,
  isControlRecord: false,
  batchContext: { producerId: '-1', inTransaction: false },
  ...extra,
});

const partitionData = (messages: Message[], abortedTransactions: unknown[] = []) => ({
  partition: 3,
  highWatermark: '1000000000000000000',
  abortedTransactions,
  messages,
});

/** What a consumer reads from a batch, through the released methods. */
function seen(batch: any) {
  return {
    topic: batch.topic,
    partition: batch.partition,
    messagesWithinOffset: batch.messagesWithinOffset.map((m: Message) => m.offset),
    messages: batch.messages.map((m: Message) => m.offset),
    isEmpty: batch.isEmpty(),
    isEmptyDueToFiltering: batch.isEmptyDueToFiltering(),
    firstOffset: batch.firstOffset(),
    lastOffset: batch.lastOffset(),
    offsetLag: batch.offsetLag(),
    offsetLagLow: batch.offsetLagLow(),
  };
}

const both = (fetchedOffset: string, data: ReturnType<typeof partitionData>) => {
  const fixed = new Fixed('t', fetchedOffset, data);
  const released = new Released('t', fetchedOffset, data);
  return { fixed, released };
};

describe('Batch (the fetched-offset filter without a BigInt per record)', () => {
  const cases: Array<[string, string, string[]]> = [
    ['a compressed batch that starts before the fetched offset', '5', ['2', '3', '4', '5', '6', '7']],
    ['offsets that gain a digit (9 before 10)', '9', ['7', '8', '9', '10', '11', '100']],
    ['offsets of one length compared by their digits', '1234', ['1199', '1233', '1234', '1235', '1300']],
    ['the fetched offset 0', '0', ['0', '1', '2']],
    ['past 2^53', '9007199254740993', ['9007199254740992', '9007199254740993', '9007199254740994']],
    ['every record before the fetched offset', '50', ['40', '41', '49']],
    ['a zero-padded fetched offset (compared as upstream)', '007', ['6', '7', '8']],
    ['a negative fetched offset (compared as upstream)', '-1', ['0', '1']],
  ];
  it.each(cases)('%s: the same records and the same answers as released', (_, fetched, offsets) => {
    const { fixed, released } = both(fetched, partitionData(offsets.map((o) => message(o))));
    expect(seen(fixed)).toEqual(seen(released));
  });

  it('keeps the fetched offset and after, in order', () => {
    const { fixed } = both('9', partitionData(['7', '8', '9', '10', '11'].map((o) => message(o))));
    expect(fixed.messages.map((m: Message) => m.offset)).toEqual(['9', '10', '11']);
  });

  it('drops control records and the records of an aborted transaction, as released', () => {
    const messages = [
      message('10', { batchContext: { producerId: '7', inTransaction: true } }),
      message('11', { batchContext: { producerId: '7', inTransaction: true } }),
      message('12', {
        key: Buffer.from([0, 0, 0, 0]),
        isControlRecord: true,
        batchContext: { producerId: '7', inTransaction: true },
      }),
      message('13'),
    ];
    const data = partitionData(messages, [{ producerId: '7', firstOffset: '10' }]);
    const { fixed, released } = both('10', data);
    expect(seen(fixed)).toEqual(seen(released));
    expect(fixed.messages.map((m: Message) => m.offset)).toEqual(['13']);
  });

  it('is an instance of the released class, with its methods', () => {
    const { fixed } = both('0', partitionData([message('0')]));
    expect(fixed).toBeInstanceOf(kafkajsInternal('src/consumer/batch.js'));
    expect(fixed.isEmptyControlRecord()).toBe(false);
    expect(fixed.isEmptyDueToLogCompactedMessages()).toBe(false);
  });
});
