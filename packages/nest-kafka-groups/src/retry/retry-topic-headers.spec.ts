import { describe, expect, test } from '@jest/globals';
import {
  appendRetryHeaders,
  decodeAttempts,
  decodeJavaBigInteger,
  encodeAttempts,
  encodeJavaBigInteger,
  lastHeader,
  MAX_BACKOFF_MS,
  msUntilDue,
  originalTimestampOf,
  RETRY_TOPIC_HEADERS,
} from './retry-topic-headers.js';

const hex = (buffer: Buffer) => buffer.toString('hex');

describe('RETRY_TOPIC_HEADERS', () => {
  test("are Spring's RetryTopicHeaders names", () => {
    expect(RETRY_TOPIC_HEADERS).toEqual({
      attempts: 'retry_topic-attempts',
      backoffTimestamp: 'retry_topic-backoff-timestamp',
      originalTimestamp: 'retry_topic-original-timestamp',
    });
  });
});

describe('attempts: ByteBuffer.putInt / DeadLetterPublishingRecovererFactory.getAttempts', () => {
  test('written as a 4-byte big-endian int', () => {
    expect(hex(encodeAttempts(2))).toBe('00000002');
    expect(hex(encodeAttempts(0x01020304))).toBe('01020304');
  });

  test('read from 4 bytes, or 1 unsigned byte (the older form)', () => {
    expect(decodeAttempts(Buffer.from('00000003', 'hex'))).toBe(3);
    expect(decodeAttempts(Buffer.from([5]))).toBe(5);
    expect(decodeAttempts(Buffer.from([200]))).toBe(200);
  });

  test('any other length, a missing header or a value outside 1..32767 reads as 1', () => {
    expect(decodeAttempts(undefined)).toBe(1);
    expect(decodeAttempts(Buffer.alloc(0))).toBe(1);
    expect(decodeAttempts(Buffer.from('0003', 'hex'))).toBe(1);
    expect(decodeAttempts(Buffer.from('0000000000000003', 'hex'))).toBe(1);
    expect(decodeAttempts(encodeAttempts(0))).toBe(1);
    expect(decodeAttempts(encodeAttempts(-7))).toBe(1);
    expect(decodeAttempts(encodeAttempts(32_767))).toBe(32_767);
    expect(decodeAttempts(encodeAttempts(32_768))).toBe(1);
    expect(decodeAttempts(Buffer.from([0]))).toBe(1);
  });
});

describe('timestamps: BigInteger.valueOf(long).toByteArray() and new BigInteger(bytes).longValue()', () => {
  // Expected bytes as Java's BigInteger.toByteArray() gives them.
  test.each([
    [0n, '00'],
    [1n, '01'],
    [127n, '7f'],
    [128n, '0080'],
    [255n, '00ff'],
    [-1n, 'ff'],
    [-128n, '80'],
    [-129n, 'ff7f'],
    [1_700_000_000_123n, '018bcfe5687b'],
    [9_223_372_036_854_775_807n, '7fffffffffffffff'],
    [-9_223_372_036_854_775_808n, '8000000000000000'],
  ])('%s <-> %s', (value, bytes) => {
    expect(hex(encodeJavaBigInteger(value))).toBe(bytes);
    expect(decodeJavaBigInteger(Buffer.from(bytes, 'hex'))).toBe(value);
  });

  test('the decoder reads padded forms too, and refuses empty or over-long values as Spring does', () => {
    expect(decodeJavaBigInteger(Buffer.from('00000000018bcfe5687b'.slice(4), 'hex'))).toBe(
      1_700_000_000_123n,
    );
    expect(decodeJavaBigInteger(Buffer.from('ffff', 'hex'))).toBe(-1n);
    expect(decodeJavaBigInteger(Buffer.alloc(0))).toBeUndefined();
    expect(decodeJavaBigInteger(Buffer.alloc(9))).toBeUndefined();
    expect(decodeJavaBigInteger(undefined)).toBeUndefined();
  });
});

describe('lastHeader and appendRetryHeaders', () => {
  test('the last of a repeated header, as Headers.lastHeader', () => {
    expect(lastHeader({ a: [Buffer.from('1'), Buffer.from('2')] }, 'a')?.toString()).toBe('2');
    expect(lastHeader({ a: 'text' }, 'a')?.toString()).toBe('text');
    expect(lastHeader({}, 'a')).toBeUndefined();
    expect(lastHeader(undefined, 'a')).toBeUndefined();
  });

  test("appends in Spring's order and keeps the earlier values (retainAllRetryHeaderValues)", () => {
    const headers = { trace: 'x' } as Record<string, Buffer | string | (Buffer | string)[]>;
    const original = encodeJavaBigInteger(1_700_000_000_123n);
    appendRetryHeaders(headers, { attempts: 2, dueAt: 1_700_000_001_000, originalTimestamp: original });
    appendRetryHeaders(headers, { attempts: 3, dueAt: 1_700_000_005_000, originalTimestamp: original });
    expect(Object.keys(headers)).toEqual([
      'trace',
      RETRY_TOPIC_HEADERS.originalTimestamp,
      RETRY_TOPIC_HEADERS.attempts,
      RETRY_TOPIC_HEADERS.backoffTimestamp,
    ]);
    expect((headers[RETRY_TOPIC_HEADERS.attempts] as Buffer[]).map(hex)).toEqual(['00000002', '00000003']);
    expect(decodeJavaBigInteger(lastHeader(headers, RETRY_TOPIC_HEADERS.backoffTimestamp))).toBe(
      1_700_000_005_000n,
    );
    expect(headers[RETRY_TOPIC_HEADERS.originalTimestamp]).toEqual([original, original]);
  });
});

describe('originalTimestampOf', () => {
  test("the record's timestamp on the main topic", () => {
    expect(hex(originalTimestampOf({}, '1700000000123'))).toBe('018bcfe5687b');
  });

  test('the carried header on a retry topic, unchanged; an invalid one is replaced by the timestamp', () => {
    const carried = Buffer.from('0000018bcfe5687b', 'hex');
    expect(originalTimestampOf({ [RETRY_TOPIC_HEADERS.originalTimestamp]: carried }, '5')).toBe(carried);
    expect(hex(originalTimestampOf({ [RETRY_TOPIC_HEADERS.originalTimestamp]: Buffer.alloc(9) }, '5'))).toBe(
      '05',
    );
  });
});

describe('msUntilDue (KafkaBackoffAwareMessageListenerAdapter)', () => {
  const due = (at: number) => ({ [RETRY_TOPIC_HEADERS.backoffTimestamp]: encodeJavaBigInteger(BigInt(at)) });

  test('the time left until the last backoff timestamp; none or negative once due', () => {
    expect(msUntilDue(due(10_800), 10_000)).toBe(800);
    expect(msUntilDue(due(10_000), 10_000)).toBe(0);
    expect(msUntilDue(due(9_000), 10_000)).toBeLessThan(0);
  });

  test('no header, an invalid one, or a due time more than a day ahead: no waiting', () => {
    expect(msUntilDue({}, 10_000)).toBe(0);
    expect(msUntilDue({ [RETRY_TOPIC_HEADERS.backoffTimestamp]: Buffer.alloc(9, 1) }, 10_000)).toBe(0);
    expect(msUntilDue(due(10_000 + MAX_BACKOFF_MS), 10_000)).toBe(MAX_BACKOFF_MS);
    expect(msUntilDue(due(10_001 + MAX_BACKOFF_MS), 10_000)).toBe(0);
  });
});
