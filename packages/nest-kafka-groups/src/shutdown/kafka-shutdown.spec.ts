import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { CLOSE_FLOOR_MS, KafkaShutdown } from './kafka-shutdown.js';

describe('KafkaShutdown', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  const never = () => new Promise<void>(() => undefined);

  test('one budget for every part: the second waits only for what the first left', async () => {
    const shutdown = new KafkaShutdown({ brokers: ['b:1'], shutdownTimeoutMs: 5_000 });
    const first = shutdown.within('consumers', new Promise((resolve) => setTimeout(resolve, 3_000)));
    await jest.advanceTimersByTimeAsync(3_000);
    expect(await first).toBe(true);
    const second = shutdown.within('producer', never());
    let settled = false;
    void second.then(() => (settled = true));
    await jest.advanceTimersByTimeAsync(1_999);
    expect(settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(await second).toBe(false);
  });

  test('once the budget ran out, a part still gets CLOSE_FLOOR_MS to close its connections', async () => {
    const shutdown = new KafkaShutdown({ brokers: ['b:1'], shutdownTimeoutMs: 1_000 });
    const first = shutdown.within('consumers', never());
    jest.advanceTimersByTime(1_000);
    expect(await first).toBe(false);
    let closed!: () => void;
    const second = shutdown.within('producer', new Promise<void>((resolve) => (closed = resolve)));
    await jest.advanceTimersByTimeAsync(CLOSE_FLOOR_MS - 1);
    closed();
    expect(await second).toBe(true);
    const third = shutdown.within('admin', never());
    await jest.advanceTimersByTimeAsync(CLOSE_FLOOR_MS);
    expect(await third).toBe(false);
  });

  test('work that ends in time resolves true, a failure included', async () => {
    const shutdown = new KafkaShutdown({ brokers: ['b:1'], shutdownTimeoutMs: 1_000 });
    expect(await shutdown.within('ok', Promise.resolve())).toBe(true);
    expect(await shutdown.within('failed', Promise.reject(new Error('connection refused')))).toBe(true);
  });

  test('the budget starts at the first call, not at construction', async () => {
    const shutdown = new KafkaShutdown({ brokers: ['b:1'], shutdownTimeoutMs: 1_000 });
    jest.advanceTimersByTime(5_000);
    expect(shutdown.remainingMs()).toBe(1_000);
    jest.advanceTimersByTime(400);
    expect(shutdown.remainingMs()).toBe(600);
  });

  test('defaults to 30 s', () => {
    expect(new KafkaShutdown({ brokers: ['b:1'] }).remainingMs()).toBe(30_000);
  });
});
