import { describe, expect, test } from '@jest/globals';
import type { IHeaders } from '../client/kafkajs.js';
import { decodeHeaders, KafkaGroupContext } from './kafka-group.context.js';

/** Headers as kafkajs hands them over: a computed `__proto__` key is an own property there. */
function kafkaHeaders(entries: [string, Buffer | Buffer[]][]): IHeaders {
  return entries.reduce<IHeaders>((headers, [name, value]) => ({ ...headers, [name]: value }), {});
}

describe('decodeHeaders', () => {
  test('decodes values as UTF-8, a repeated header as an array', () => {
    const headers = decodeHeaders(
      kafkaHeaders([
        ['traceparent', Buffer.from('00-abc-01')],
        ['tag', [Buffer.from('a'), Buffer.from('ü')]],
      ]),
    );
    expect({ ...headers }).toEqual({ traceparent: '00-abc-01', tag: ['a', 'ü'] });
  });

  test('is a null-prototype object: nothing inherited answers for a missing header', () => {
    const headers = decodeHeaders(kafkaHeaders([['a', Buffer.from('1')]]));
    expect(Object.getPrototypeOf(headers)).toBeNull();
    expect(headers.constructor).toBeUndefined();
    expect(headers.toString).toBeUndefined();
    expect('hasOwnProperty' in headers).toBe(false);
  });

  test('a header named __proto__ is kept as a header and does not change the prototype', () => {
    const headers = decodeHeaders(kafkaHeaders([['__proto__', Buffer.from('polluted')]]));
    expect(Object.getPrototypeOf(headers)).toBeNull();
    expect(Object.keys(headers)).toEqual(['__proto__']);
    expect(headers['__proto__']).toBe('polluted');
  });

  test('a repeated __proto__ header (an array value) stays a header, not the prototype', () => {
    const headers = decodeHeaders(kafkaHeaders([['__proto__', [Buffer.from('x'), Buffer.from('y')]]]));
    expect(Object.getPrototypeOf(headers)).toBeNull();
    expect(headers['__proto__']).toEqual(['x', 'y']);
    expect((headers as unknown as unknown[]).length).toBeUndefined();
  });

  test('headers named like Object.prototype members are plain headers', () => {
    const headers = decodeHeaders(
      kafkaHeaders([
        ['constructor', Buffer.from('c')],
        ['toString', Buffer.from('t')],
      ]),
    );
    expect(headers.constructor).toBe('c');
    expect(headers.toString).toBe('t');
  });

  test('a null header value (sent by Java producers) reads as an empty string', () => {
    const headers = decodeHeaders({ empty: null, list: [Buffer.from('a'), null] } as unknown as IHeaders);
    expect({ ...headers }).toEqual({ empty: '', list: ['a', ''] });
  });

  test('no headers: an empty null-prototype object', () => {
    const headers = decodeHeaders(undefined);
    expect(Object.keys(headers)).toEqual([]);
    expect(Object.getPrototypeOf(headers)).toBeNull();
  });
});

describe('KafkaGroupContext.signal', () => {
  const message = {
    offset: '7',
    key: null,
    value: Buffer.from('{}'),
    timestamp: '0',
    attributes: 0,
    headers: {},
  };

  test('given a controller (what the consumer passes), it is that controller signal, aborted with it', () => {
    const controller = new AbortController();
    const context = new KafkaGroupContext('orders', 2, message, 'billing', 1, controller);
    expect(context.signal).toBe(controller.signal);
    expect(context.signal.aborted).toBe(false);
    controller.abort(new Error('shutting down'));
    expect(context.signal.aborted).toBe(true);
    expect((context.signal.reason as Error).message).toBe('shutting down');
  });

  test('given a signal, it is that signal', () => {
    const signal = AbortSignal.abort();
    expect(new KafkaGroupContext('orders', 2, message, 'billing', 1, signal).signal).toBe(signal);
  });
});
