import { describe, expect, test } from '@jest/globals';
import type { IHeaders, KafkaMessage } from '../client/kafkajs.js';
import { KafkaMessageLimitError } from '../errors/kafka-message-limit.error.js';
import { KafkaNonRetryableError } from '../errors/kafka-non-retryable.error.js';
import { KafkaPayloadDecodeError } from '../errors/kafka-payload-decode.error.js';
import { DEFAULT_LIMITS, type KafkaMessageLimits } from '../kafka.options.js';
import { decodePayload, mayBreakJsonBounds } from './message-limits.js';

const FLIGHT = JSON.stringify({
  icao24: '3c6444',
  callsign: 'DLH4AB',
  lat: 50.0379,
  lon: 8.5622,
  altitude: 10_668,
  speed: 231.5,
  heading: 271,
  ts: 1_760_000_000_000,
});

function message(value: string | Buffer | null, headers: IHeaders = {}): KafkaMessage {
  return {
    key: null,
    value: typeof value === 'string' ? Buffer.from(value) : value,
    headers,
    offset: '42',
    timestamp: '0',
    attributes: 0,
  } as KafkaMessage;
}

function decode(
  value: string | Buffer | null,
  limits: Partial<KafkaMessageLimits> = {},
  headers?: IHeaders,
  raw = false,
) {
  return decodePayload({ ...DEFAULT_LIMITS, ...limits }, raw, 'orders', 3, message(value, headers));
}

function limitError(result: unknown): KafkaMessageLimitError {
  expect(result).toBeInstanceOf(KafkaMessageLimitError);
  return result as KafkaMessageLimitError;
}

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);
const objectNested = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
const manyKeys = (count: number) =>
  `{${Array.from({ length: count }, (_, i) => `"${i.toString(36)}":0`).join(',')}}`;

describe('decodePayload', () => {
  test('decodes a well-formed message as JSON', () => {
    expect(decode(FLIGHT)).toEqual(JSON.parse(FLIGHT));
  });

  test('a tombstone (null value) decodes to null', () => {
    expect(decode(null)).toBeNull();
  });

  test('a raw handler gets the Buffer itself, never parsed', () => {
    const bytes = Buffer.from(nested(10_000));
    expect(decode(bytes, {}, {}, true)).toBe(bytes);
  });

  test('bad JSON is a KafkaPayloadDecodeError', () => {
    expect(decode('{"a":')).toBeInstanceOf(KafkaPayloadDecodeError);
  });

  describe('limit errors', () => {
    test('are non-retryable and name the limit, topic, partition and offset', () => {
      const error = limitError(decode(nested(200)));
      expect(error).toBeInstanceOf(KafkaNonRetryableError);
      expect(error.name).toBe('KafkaMessageLimitError');
      expect(error).toMatchObject({
        limit: 'maxJsonDepth',
        max: 128,
        topic: 'orders',
        partition: 3,
        offset: '42',
      });
      expect(error.message).toBe('Message at orders[3]@42 is over limits.maxJsonDepth: 129 > 128');
    });
  });

  describe('headers', () => {
    const headers = (count: number): IHeaders =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`h${i}`, Buffer.from('v')]));

    test('as many headers as allowed pass; one more is over maxHeaders', () => {
      expect(decode(FLIGHT, { maxHeaders: 3 }, headers(3))).toEqual(JSON.parse(FLIGHT));
      expect(limitError(decode(FLIGHT, { maxHeaders: 3 }, headers(4)))).toMatchObject({
        limit: 'maxHeaders',
        actual: 4,
        max: 3,
      });
    });

    test('each value of a repeated header counts', () => {
      const repeated = { tag: [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')] };
      expect(limitError(decode(FLIGHT, { maxHeaders: 2 }, repeated)).limit).toBe('maxHeaders');
    });

    test('10,000 headers are refused with the defaults, counting stops at the first over the bound', () => {
      expect(limitError(decode(FLIGHT, {}, headers(10_000)))).toMatchObject({
        limit: 'maxHeaders',
        actual: 257,
      });
    });

    test('names and values count towards maxHeaderBytes', () => {
      const big = { name: Buffer.alloc(96), other: Buffer.alloc(0) };
      // 4 + 96 + 5 + 0 = 105 bytes
      expect(decode(FLIGHT, { maxHeaderBytes: 105 }, big)).toEqual(JSON.parse(FLIGHT));
      expect(limitError(decode(FLIGHT, { maxHeaderBytes: 104 }, big))).toMatchObject({
        limit: 'maxHeaderBytes',
        actual: 105,
      });
    });

    test('a null header value counts as a header of no bytes', () => {
      // a, b, b: 3 headers; 1 + 1 + 1 + 2 = 5 bytes
      const nulls = { a: null, b: [null, Buffer.from('xy')] } as unknown as IHeaders;
      expect(decode(FLIGHT, { maxHeaders: 3, maxHeaderBytes: 5 }, nulls)).toEqual(JSON.parse(FLIGHT));
      expect(limitError(decode(FLIGHT, { maxHeaders: 2 }, nulls)).limit).toBe('maxHeaders');
    });

    test('headers are checked for raw handlers too', () => {
      expect(limitError(decode(Buffer.from('x'), { maxHeaders: 1 }, headers(2), true)).limit).toBe(
        'maxHeaders',
      );
    });
  });

  describe('value bytes', () => {
    test('a value over maxValueBytes is refused before it is parsed', () => {
      const error = limitError(decode('x'.repeat(101), { maxValueBytes: 100 }));
      expect(error).toMatchObject({ limit: 'maxValueBytes', actual: 101, max: 100 });
      expect(decode('1'.repeat(100), { maxValueBytes: 100 })).toBe(Number('1'.repeat(100)));
    });

    test('applies to raw handlers', () => {
      expect(limitError(decode(Buffer.alloc(11), { maxValueBytes: 10 }, {}, true)).limit).toBe(
        'maxValueBytes',
      );
    });
  });

  describe('JSON depth', () => {
    test.each([
      ['arrays', (d: number) => nested(d)],
      ['objects', objectNested],
    ])('%s: exactly maxJsonDepth levels pass, one more is refused', (_kind, build) => {
      expect(decode(build(5), { maxJsonDepth: 5 })).not.toBeInstanceOf(Error);
      expect(limitError(decode(build(6), { maxJsonDepth: 5 }))).toMatchObject({
        limit: 'maxJsonDepth',
        actual: 6,
      });
    });

    test('10,000 levels are refused with the defaults, without overflowing the stack', () => {
      expect(limitError(decode(nested(10_000))).limit).toBe('maxJsonDepth');
      expect(limitError(decode(objectNested(10_000))).limit).toBe('maxJsonDepth');
    });

    test('brackets inside strings do not make a flat value deep', () => {
      expect(decode(JSON.stringify({ text: '['.repeat(500) }))).toEqual({ text: '['.repeat(500) });
    });
  });

  describe('JSON keys', () => {
    test('exactly maxJsonKeys keys pass, one more is refused', () => {
      expect(decode(manyKeys(10), { maxJsonKeys: 10 })).not.toBeInstanceOf(Error);
      expect(limitError(decode(manyKeys(11), { maxJsonKeys: 10 }))).toMatchObject({
        limit: 'maxJsonKeys',
        actual: 11,
      });
    });

    test('keys of nested objects and of objects in arrays count together', () => {
      const value = JSON.stringify({ a: { b: 1, c: 2 }, list: [{ d: 1 }, { e: 1 }] });
      // a, b, c, list, d, e
      expect(decode(value, { maxJsonKeys: 6 })).not.toBeInstanceOf(Error);
      expect(limitError(decode(value, { maxJsonKeys: 5 })).limit).toBe('maxJsonKeys');
    });

    test('100,000 keys (within maxValueBytes) are refused with the defaults', () => {
      expect(manyKeys(100_000).length).toBeLessThan(DEFAULT_LIMITS.maxValueBytes);
      expect(limitError(decode(manyKeys(100_000))).limit).toBe('maxJsonKeys');
    });

    test('a __proto__ key is counted as a key like any other', () => {
      expect(limitError(decode('{"__proto__":{"x":1}}', { maxJsonKeys: 1 })).limit).toBe('maxJsonKeys');
    });
  });
});

describe('mayBreakJsonBounds (whether the JSON walk runs at all)', () => {
  test('a typical small message skips the walk with the default limits', () => {
    expect(mayBreakJsonBounds(DEFAULT_LIMITS, Buffer.from(FLIGHT))).toBe(false);
  });

  test('a value long enough to hold more keys than allowed is walked', () => {
    expect(mayBreakJsonBounds({ ...DEFAULT_LIMITS, maxJsonKeys: 10 }, Buffer.from(manyKeys(11)))).toBe(true);
  });

  test('a value with more opening brackets than levels allowed is walked', () => {
    expect(mayBreakJsonBounds({ ...DEFAULT_LIMITS, maxJsonDepth: 3 }, Buffer.from('[{"a":[1]},{}]'))).toBe(
      true,
    );
    expect(mayBreakJsonBounds({ ...DEFAULT_LIMITS, maxJsonDepth: 3 }, Buffer.from('[{"a":1.000}]'))).toBe(
      false,
    );
  });

  test('the skip is sound: the shortest values that break a bound are never skipped', () => {
    const limits = { ...DEFAULT_LIMITS, maxJsonDepth: 4, maxJsonKeys: 3 };
    // One level or one key too many, written as densely as JSON allows.
    for (const value of [nested(5), objectNested(5), '{"":{"":{"":{"":0}}}}', '{"a":0,"b":0,"c":0,"d":0}']) {
      expect(mayBreakJsonBounds(limits, Buffer.from(value))).toBe(true);
      expect(decode(value, limits)).toBeInstanceOf(KafkaMessageLimitError);
    }
  });
});
