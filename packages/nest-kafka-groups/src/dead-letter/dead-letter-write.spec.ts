import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { KafkaMessage, Message } from '../client/kafkajs.js';
import { DLT_HEADERS, DLT_STUB_HEADERS } from './dead-letter-headers.js';
import {
  DeadLetterWrite,
  type DeadLetterWriteState,
  errorTypes,
  MAX_STOPPED_RETRY_DELAY_MS,
  type RecordSender,
} from './dead-letter-write.js';

const message = {
  key: Buffer.from('k'),
  value: Buffer.from('{"big":true}'),
  timestamp: '1700000000000',
  attributes: 0,
  offset: '7',
  headers: { trace: Buffer.from('t') },
} as KafkaMessage;
const source = { topic: 'orders', partition: 2, message, groupId: 'billing', error: new Error('boom') };

const protocolError = (type: string) =>
  Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, retriable: false });
/** How kafkajs reports a request that failed on every retry. */
const afterRetries = (cause: Error) =>
  Object.assign(new Error(cause.message, { cause }), { name: 'KafkaJSNumberOfRetriesExceeded' });

interface Send {
  topic: string;
  record: Message;
  resolve: () => void;
  reject: (error: unknown) => void;
}

describe('DeadLetterWrite', () => {
  let sends: Send[];
  let changes: DeadLetterWriteState[];
  const send: RecordSender = (topic, record) =>
    new Promise<void>((resolve, reject) => sends.push({ topic, record, resolve, reject }));
  const start = (settings = { timeoutMs: 1_000, retryDelayMs: 500 }) =>
    new DeadLetterWrite(send, 'orders-dlt', source, settings, (w) => changes.push(w.state));
  /** Lets the write's promise chain run. */
  const settle = () => jest.advanceTimersByTimeAsync(0);

  beforeEach(() => {
    jest.useFakeTimers();
    sends = [];
    changes = [];
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  test('sendsSettled: waits for the send out (even after cancel), its outcome applied; at once when none is out', async () => {
    const write = start();
    let settled = false;
    void write.sendsSettled().then(() => (settled = true));
    write.cancel();
    await settle();
    expect(settled).toBe(false);
    expect(write.sending).toBe(true);
    sends[0].resolve();
    await settle();
    expect(settled).toBe(true);
    expect(write.state).toBe('written');

    const failing = start();
    sends[1].reject(new Error('broker away'));
    await settle();
    // Waiting to try again, no send out: nothing to wait for.
    let idle = false;
    void failing.sendsSettled().then(() => (idle = true));
    await settle();
    expect(idle).toBe(true);
    expect(failing.sending).toBe(false);
    expect(failing.state).toBe('pending');
    failing.cancel();
  });

  test('settledWithin: resolves as soon as the first try is written, or failed', async () => {
    const written = start();
    let done = false;
    void written.settledWithin(250).then(() => (done = true));
    sends[0].resolve();
    await settle();
    expect(done).toBe(true);
    expect(written.state).toBe('written');

    const failed = start();
    let failedDone = false;
    void failed.settledWithin(250).then(() => (failedDone = true));
    sends[1].reject(protocolError('UNKNOWN_TOPIC_OR_PARTITION'));
    await settle();
    expect(failedDone).toBe(true);
    expect(failed.state).toBe('stopped');
  });

  test('settledWithin: gives up after its bound while the send is still out (the write goes on)', async () => {
    const write = start();
    let done = false;
    void write.settledWithin(250).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(249);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    expect(write.state).toBe('pending');
    sends[0].resolve();
    await settle();
    expect(write.state).toBe('written');
  });

  test('a send that answers after the deadline is never sent a second time', async () => {
    const write = start({ timeoutMs: 1_000, retryDelayMs: 100 });
    expect(sends).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(sends).toHaveLength(1);
    expect(write.state).toBe('pending');
    sends[0].resolve();
    await settle();
    expect(write.state).toBe('written');
    expect(changes).toEqual(['written']);
    expect(sends).toHaveLength(1);
  });

  test('the record keeps key, value bytes and original headers, plus the dead-letter headers', () => {
    start();
    const { topic, record } = sends[0];
    expect(topic).toBe('orders-dlt');
    expect(record.key).toBe(message.key);
    expect(record.value).toBe(message.value);
    const headers = record.headers!;
    expect(headers.trace).toEqual(Buffer.from('t'));
    expect(headers[DLT_HEADERS.originalTopic]).toEqual(Buffer.from('orders'));
  });

  test('a failure that may pass is tried again after retryDelayMs, one send at a time', async () => {
    const write = start({ timeoutMs: 1_000, retryDelayMs: 500 });
    sends[0].reject(afterRetries(new Error('Connection error: ECONNREFUSED')));
    await settle();
    expect(write.state).toBe('pending');
    expect(write.reason).toMatch(/orders\[2\]@7 to dead-letter topic "orders-dlt": Connection error/);
    await jest.advanceTimersByTimeAsync(499);
    expect(sends).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(sends).toHaveLength(2);
    sends[1].resolve();
    await settle();
    expect(write.state).toBe('written');
    expect(write.reason).toBeUndefined();
  });

  test('a missing topic stops the write; tries back off exponentially up to a bound, not in a tight loop', async () => {
    const write = start({ timeoutMs: 1_000, retryDelayMs: 1_000 });
    const delays: number[] = [];
    let last = Date.now();
    for (let i = 0; i < 9; i++) {
      sends[i].reject(afterRetries(protocolError('UNKNOWN_TOPIC_OR_PARTITION')));
      await settle();
      expect(write.state).toBe('stopped');
      const before = sends.length;
      while (sends.length === before) await jest.advanceTimersByTimeAsync(100);
      delays.push(Date.now() - last);
      last = Date.now();
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect(MAX_STOPPED_RETRY_DELAY_MS).toBe(60_000);
    expect(write.reason).toContain('"orders-dlt"');
    expect(write.reason).toContain('orders[2]@7');
    expect(write.reason).toMatch(/UNKNOWN_TOPIC_OR_PARTITION: the dead-letter topic does not exist/);
    // Creating the topic lets it go on.
    sends.at(-1)!.resolve();
    await settle();
    expect(write.state).toBe('written');
  });

  test('not authorized: stopped, with a reason naming the topics', async () => {
    const write = start();
    sends[0].reject(protocolError('TOPIC_AUTHORIZATION_FAILED'));
    await settle();
    expect(write.state).toBe('stopped');
    expect(write.reason).toMatch(/"orders-dlt".*TOPIC_AUTHORIZATION_FAILED: not authorized/);
  });

  test('too large: a stub that names the original is written at once, without value or original headers', async () => {
    const write = start();
    sends[0].reject(protocolError('MESSAGE_TOO_LARGE'));
    await settle();
    expect(sends).toHaveLength(2);
    expect(write.stub).toBe(true);
    const { record } = sends[1];
    expect(record.key).toBe(message.key);
    expect(record.value).toBeNull();
    const headers = record.headers!;
    expect(headers.trace).toBeUndefined();
    expect((headers[DLT_HEADERS.originalOffset] as Buffer).readBigInt64BE()).toBe(7n);
    expect(headers[DLT_HEADERS.originalTopic]).toEqual(Buffer.from('orders'));
    expect(String(headers[DLT_STUB_HEADERS.reason])).toMatch(
      /^MESSAGE_TOO_LARGE: orders\[2\]@7 .*"orders-dlt"/,
    );
    expect(String(headers[DLT_STUB_HEADERS.valueBytes])).toBe(String(message.value!.length));
    sends[1].resolve();
    await settle();
    expect(write.state).toBe('written');
  });

  test('even the stub too large: stopped, the reason says so', async () => {
    const write = start();
    sends[0].reject(protocolError('RECORD_LIST_TOO_LARGE'));
    await settle();
    sends[1].reject(protocolError('MESSAGE_TOO_LARGE'));
    await settle();
    expect(write.state).toBe('stopped');
    expect(write.reason).toMatch(/MESSAGE_TOO_LARGE: even the stub record is too large/);
    expect(changes).toEqual(['stopped']);
  });

  test('cancel: no more tries; a send already out may still finish', async () => {
    const write = start({ timeoutMs: 1_000, retryDelayMs: 100 });
    sends[0].reject(new Error('broker down'));
    await settle();
    write.cancel();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(sends).toHaveLength(1);
  });
});

describe('errorTypes', () => {
  test('finds protocol error types through causes, originalError and aggregated errors', () => {
    const nested = {
      name: 'KafkaJSNumberOfRetriesExceeded',
      originalError: {
        errors: [{ type: 'NOT_LEADER_FOR_PARTITION' }, new Error('x', { cause: { type: 'A' } })],
      },
      cause: { type: 'MESSAGE_TOO_LARGE' },
    };
    expect(errorTypes(nested)).toEqual(new Set(['NOT_LEADER_FOR_PARTITION', 'A', 'MESSAGE_TOO_LARGE']));
    expect(errorTypes(undefined)).toEqual(new Set());
  });

  test('a cycle does not loop forever', () => {
    const a: Record<string, unknown> = { type: 'A' };
    a.cause = a;
    expect(errorTypes(a)).toEqual(new Set(['A']));
  });
});
