import { describe, expect, test } from '@jest/globals';
import type { KafkaMessage } from '../client/kafkajs.js';
import { KafkaPayloadDecodeError } from '../errors/kafka-payload-decode.error.js';
import {
  boundedUtf8,
  buildDeadLetterHeaders,
  buildStubHeaders,
  DLT_HEADERS,
  DLT_STUB_HEADERS,
  MAX_EXCEPTION_MESSAGE_BYTES,
  MAX_STACK_TRACE_BYTES,
} from './dead-letter-headers.js';

function message(extra: Partial<KafkaMessage> = {}): KafkaMessage {
  return {
    key: Buffer.from('4b1805'),
    value: Buffer.from('{}'),
    timestamp: '1700000000123',
    attributes: 0,
    offset: '42',
    headers: {},
    ...extra,
  } as KafkaMessage;
}

const hex = (value: unknown) => (value as Buffer).toString('hex');
const utf8 = (value: unknown) => (value as Buffer).toString('utf8');

describe('buildDeadLetterHeaders', () => {
  test("uses Spring Kafka's header names", () => {
    expect(DLT_HEADERS).toEqual({
      originalTopic: 'kafka_dlt-original-topic',
      originalPartition: 'kafka_dlt-original-partition',
      originalOffset: 'kafka_dlt-original-offset',
      originalTimestamp: 'kafka_dlt-original-timestamp',
      originalTimestampType: 'kafka_dlt-original-timestamp-type',
      originalConsumerGroup: 'kafka_dlt-original-consumer-group',
      exceptionFqcn: 'kafka_dlt-exception-fqcn',
      exceptionCauseFqcn: 'kafka_dlt-exception-cause-fqcn',
      exceptionMessage: 'kafka_dlt-exception-message',
      exceptionStacktrace: 'kafka_dlt-exception-stacktrace',
    });
  });

  test('writes every header a Spring reader expects, the cause header too for an error without a cause', () => {
    const headers = buildDeadLetterHeaders({
      topic: 'orders',
      partition: 3,
      message: message(),
      groupId: 'billing',
      error: new Error('boom'),
    });
    expect(Object.keys(headers).sort()).toEqual(
      [
        'kafka_dlt-original-topic',
        'kafka_dlt-original-partition',
        'kafka_dlt-original-offset',
        'kafka_dlt-original-timestamp',
        'kafka_dlt-original-timestamp-type',
        'kafka_dlt-original-consumer-group',
        'kafka_dlt-exception-fqcn',
        'kafka_dlt-exception-cause-fqcn',
        'kafka_dlt-exception-message',
        'kafka_dlt-exception-stacktrace',
      ].sort(),
    );
  });

  test('partition is a 4-byte big-endian int', () => {
    const small = buildDeadLetterHeaders({
      topic: 't',
      partition: 3,
      message: message(),
      groupId: 'g',
      error: new Error(),
    });
    expect(hex(small[DLT_HEADERS.originalPartition])).toBe('00000003');
    const large = buildDeadLetterHeaders({
      topic: 't',
      partition: 0x01020304,
      message: message(),
      groupId: 'g',
      error: new Error(),
    });
    expect(hex(large[DLT_HEADERS.originalPartition])).toBe('01020304');
  });

  test('offset and timestamp are 8-byte big-endian longs', () => {
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message({ offset: '42', timestamp: '1700000000123' }),
      groupId: 'g',
      error: new Error(),
    });
    expect(hex(headers[DLT_HEADERS.originalOffset])).toBe('000000000000002a');
    // 1700000000123 = 0x18BCFE5687B
    expect(hex(headers[DLT_HEADERS.originalTimestamp])).toBe('0000018bcfe5687b');
    expect((headers[DLT_HEADERS.originalTimestamp] as Buffer).readBigInt64BE()).toBe(1700000000123n);
  });

  test('offsets beyond 2^53 keep every digit', () => {
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message({ offset: '9223372036854775807', timestamp: '-1' }),
      groupId: 'g',
      error: new Error(),
    });
    expect(hex(headers[DLT_HEADERS.originalOffset])).toBe('7fffffffffffffff');
    expect(hex(headers[DLT_HEADERS.originalTimestamp])).toBe('ffffffffffffffff');
  });

  test('topic, group, exception name, message and stack trace are UTF-8', () => {
    const error = new TypeError('Größe ungültig ✈');
    const headers = buildDeadLetterHeaders({
      topic: 'flüge',
      partition: 0,
      message: message(),
      groupId: 'gruppe-ä',
      error,
    });
    expect(utf8(headers[DLT_HEADERS.originalTopic])).toBe('flüge');
    expect(utf8(headers[DLT_HEADERS.originalConsumerGroup])).toBe('gruppe-ä');
    expect(utf8(headers[DLT_HEADERS.exceptionFqcn])).toBe('TypeError');
    expect(utf8(headers[DLT_HEADERS.exceptionMessage])).toBe('Größe ungültig ✈');
    expect(utf8(headers[DLT_HEADERS.exceptionStacktrace])).toBe(error.stack);
    expect(hex(headers[DLT_HEADERS.originalTopic])).toBe(Buffer.from('flüge', 'utf8').toString('hex'));
  });

  test("the exception name is the library error's class name", () => {
    const error = new KafkaPayloadDecodeError('t', 0, '1', new SyntaxError('Unexpected token'));
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message(),
      groupId: 'g',
      error,
    });
    expect(utf8(headers[DLT_HEADERS.exceptionFqcn])).toBe('KafkaPayloadDecodeError');
  });

  test.each([
    ['a subclass without its own name', new (class FlightFeedError extends Error {})('x'), 'FlightFeedError'],
    ['a plain Error given a name', Object.assign(new Error('x'), { name: 'TimeoutError' }), 'TimeoutError'],
    ['a plain Error with an empty name', Object.assign(new Error('x'), { name: '' }), 'Error'],
    [
      'an error object without a prototype',
      Object.assign(Object.create(null) as Error, { name: 'ForeignError', message: 'x' }),
      'ForeignError',
    ],
  ])('the exception class of %s', (_what, error, expected) => {
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message(),
      groupId: 'g',
      error,
    });
    expect(utf8(headers[DLT_HEADERS.exceptionFqcn])).toBe(expected);
  });

  test('without a stack, the trace falls back to "name: message"', () => {
    const error = new RangeError('too far');
    error.stack = undefined;
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message(),
      groupId: 'g',
      error,
    });
    expect(utf8(headers[DLT_HEADERS.exceptionStacktrace])).toBe('RangeError: too far');
  });

  test("the cause header names the handler's error, as Spring's names the listener's exception, not its cause", () => {
    const error = new TypeError('wrapped', { cause: new SyntaxError('bad json') });
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message(),
      groupId: 'g',
      error,
    });
    expect(utf8(headers[DLT_HEADERS.exceptionFqcn])).toBe('TypeError');
    expect(utf8(headers[DLT_HEADERS.exceptionCauseFqcn])).toBe('TypeError');
    expect(utf8(headers[DLT_HEADERS.exceptionMessage])).toBe('wrapped');
  });

  test('the causes follow the stack trace as "Caused by:" lines, as Java prints them', () => {
    const root = new SyntaxError('bad json');
    root.stack = 'SyntaxError: bad json\n    at parse';
    const middle = new RangeError('out of range', { cause: root });
    middle.stack = 'RangeError: out of range\n    at check';
    const error = new Error('outer', { cause: middle });
    error.stack = 'Error: outer\n    at handle';
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message(),
      groupId: 'g',
      error,
    });
    expect(utf8(headers[DLT_HEADERS.exceptionStacktrace])).toBe(
      'Error: outer\n    at handle\n' +
        'Caused by: RangeError: out of range\n    at check\n' +
        'Caused by: SyntaxError: bad json\n    at parse',
    );
  });

  test('a cause that is not an Error is printed as its value; a cycle of causes ends', () => {
    const text = new Error('wrapped', { cause: 'just a string' });
    text.stack = 'Error: wrapped';
    const cyclic = new Error('a');
    cyclic.stack = 'Error: a';
    const other = new Error('b', { cause: cyclic });
    other.stack = 'Error: b';
    cyclic.cause = other;
    const trace = (error: Error) =>
      utf8(
        buildDeadLetterHeaders({ topic: 't', partition: 0, message: message(), groupId: 'g', error })[
          DLT_HEADERS.exceptionStacktrace
        ],
      );
    expect(trace(text)).toBe('Error: wrapped\nCaused by: just a string');
    expect(trace(cyclic)).toBe('Error: a\nCaused by: Error: b');
  });

  test('original headers are kept and the message is not mutated', () => {
    const original = { 'trace-id': Buffer.from('abc'), source: 'airnav', multi: ['a', 'b'] };
    const msg = message({ headers: original });
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 1,
      message: msg,
      groupId: 'g',
      error: new Error('x'),
    });
    expect(utf8(headers['trace-id'])).toBe('abc');
    expect(headers.source).toBe('airnav');
    expect(headers.multi).toEqual(['a', 'b']);
    expect(msg.headers).toBe(original);
    expect(Object.keys(original)).toEqual(['trace-id', 'source', 'multi']);
  });

  test('a message without headers still gets the dead-letter headers', () => {
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 1,
      message: message({ headers: undefined }),
      groupId: 'g',
      error: new Error('x'),
    });
    expect(utf8(headers[DLT_HEADERS.originalTopic])).toBe('t');
  });

  test("a dead letter dead-lettered again: original-* values appended after the earlier ones (Spring's appendOriginalHeaders), exception headers replaced", () => {
    const msg = message({
      headers: {
        [DLT_HEADERS.originalTopic]: Buffer.from('orders'),
        [DLT_HEADERS.originalOffset]: [Buffer.alloc(8), Buffer.alloc(8, 1)],
        [DLT_HEADERS.exceptionMessage]: Buffer.from('older failure'),
      },
    });
    const headers = buildDeadLetterHeaders({
      topic: 'orders-dlt',
      partition: 0,
      message: msg,
      groupId: 'g',
      error: new Error('latest'),
    });
    expect((headers[DLT_HEADERS.originalTopic] as Buffer[]).map(utf8)).toEqual(['orders', 'orders-dlt']);
    expect((headers[DLT_HEADERS.originalOffset] as Buffer[]).map(hex)).toEqual([
      '0000000000000000',
      '0101010101010101',
      '000000000000002a',
    ]);
    expect(hex(headers[DLT_HEADERS.originalPartition])).toBe('00000000');
    expect(utf8(headers[DLT_HEADERS.exceptionMessage])).toBe('latest');
  });

  test("the original timestamp type by Java's name: CreateTime, LogAppendTime from the record batch", () => {
    const typed = (timestampType: number | undefined) =>
      utf8(
        buildDeadLetterHeaders({
          topic: 't',
          partition: 0,
          message: message({ batchContext: { timestampType } } as Partial<KafkaMessage>),
          groupId: 'g',
          error: new Error('x'),
        })[DLT_HEADERS.originalTimestampType],
      );
    expect(typed(0)).toBe('CreateTime');
    expect(typed(1)).toBe('LogAppendTime');
    expect(typed(undefined)).toBe('CreateTime');
  });
});

describe('bounded headers', () => {
  test('a deep stack trace is cut to MAX_STACK_TRACE_BYTES on a character boundary, with a marker', () => {
    const error = new Error('deep');
    error.stack = `Error: deep\n${'    at ✈ frame (f.ts:1:1)\n'.repeat(2_000)}`;
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message(),
      groupId: 'g',
      error,
    });
    const stack = headers[DLT_HEADERS.exceptionStacktrace] as Buffer;
    expect(stack.length).toBeLessThanOrEqual(MAX_STACK_TRACE_BYTES);
    expect(stack.length).toBeGreaterThan(MAX_STACK_TRACE_BYTES - 8);
    const text = stack.toString('utf8');
    expect(text).not.toContain('\uFFFD');
    expect(text.startsWith('Error: deep\n    at ✈ frame')).toBe(true);
    expect(text.endsWith('\n... (truncated)')).toBe(true);
  });

  test('a huge exception message is bounded too; short ones are untouched', () => {
    const long = new Error('ü'.repeat(10_000));
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message(),
      groupId: 'g',
      error: long,
    });
    expect((headers[DLT_HEADERS.exceptionMessage] as Buffer).length).toBeLessThanOrEqual(
      MAX_EXCEPTION_MESSAGE_BYTES,
    );
    expect(boundedUtf8('short', 10).toString()).toBe('short');
  });

  test('a text of exactly maxBytes is kept whole; one byte more is cut with the marker', () => {
    const exact = 'x'.repeat(40);
    expect(boundedUtf8(exact, 40).toString()).toBe(exact);
    const cut = boundedUtf8(`${exact}y`, 40);
    expect(cut.length).toBeLessThanOrEqual(40);
    expect(cut.toString().endsWith('\n... (truncated)')).toBe(true);
  });

  test('a cut inside a two-byte character backs off to the character before it', () => {
    const marker = Buffer.from('\n... (truncated)').length;
    // 'a' then 'ü' (two bytes each): byte 6 is the second byte of the third 'ü'.
    const cut = boundedUtf8(`a${'ü'.repeat(100)}`, marker + 6);
    expect(cut.toString()).toBe('aüü\n... (truncated)');
  });

  test('a stub keeps the dead-letter headers, drops the original ones and says why', () => {
    const headers = buildStubHeaders(
      {
        topic: 't',
        partition: 1,
        message: message({ headers: { trace: 'x' } }),
        groupId: 'g',
        error: new Error('e'),
      },
      'MESSAGE_TOO_LARGE: too big',
    );
    expect(headers.trace).toBeUndefined();
    expect(utf8(headers[DLT_HEADERS.originalTopic])).toBe('t');
    expect(utf8(headers[DLT_STUB_HEADERS.reason])).toBe('MESSAGE_TOO_LARGE: too big');
    expect(utf8(headers[DLT_STUB_HEADERS.valueBytes])).toBe('2');
  });

  test('a stub of a tombstone (null value, too large by its key and headers) gives its value size as 0', () => {
    const headers = buildStubHeaders(
      { topic: 't', partition: 1, message: message({ value: null }), groupId: 'g', error: new Error('e') },
      'MESSAGE_TOO_LARGE: too big',
    );
    expect(utf8(headers[DLT_STUB_HEADERS.valueBytes])).toBe('0');
  });
});

describe('along retry topics', () => {
  const retry = {
    attempts: 3,
    dueAt: 1_700_000_001_000,
    originalTimestamp: Buffer.from('018bcfe5687b', 'hex'),
  };

  test("the first failure's original-* headers are kept; the exception headers describe the latest", () => {
    const fromMain = buildDeadLetterHeaders({
      topic: 'orders',
      partition: 2,
      message: message({ offset: '42' }),
      groupId: 'billing',
      error: new Error('first'),
      retry: { ...retry, attempts: 2 },
    });
    const fromRetry = buildDeadLetterHeaders({
      topic: 'orders-retry-1000',
      partition: 0,
      message: message({ offset: '7', headers: fromMain }),
      groupId: 'billing',
      error: new TypeError('second'),
      retry,
    });
    expect(utf8(fromRetry[DLT_HEADERS.originalTopic])).toBe('orders');
    expect(hex(fromRetry[DLT_HEADERS.originalPartition])).toBe('00000002');
    expect(hex(fromRetry[DLT_HEADERS.originalOffset])).toBe('000000000000002a');
    expect(utf8(fromRetry[DLT_HEADERS.exceptionMessage])).toBe('second');
    expect(utf8(fromRetry[DLT_HEADERS.exceptionFqcn])).toBe('TypeError');
    expect((fromRetry['retry_topic-attempts'] as Buffer[]).map(hex)).toEqual(['00000002', '00000003']);
  });

  test('without retry values nothing of the retry chain is written', () => {
    const headers = buildDeadLetterHeaders({
      topic: 't',
      partition: 0,
      message: message(),
      groupId: 'g',
      error: new Error('x'),
    });
    expect(Object.keys(headers).filter((name) => name.startsWith('retry_topic-'))).toEqual([]);
  });
});
