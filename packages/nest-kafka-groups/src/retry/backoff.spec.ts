import { describe, expect, test } from '@jest/globals';
import type { KafkaRetryOptions } from '../kafka.options.js';
import { backoffDelay } from './backoff.js';

describe('backoffDelay', () => {
  const retry: KafkaRetryOptions = { attempts: 10, initialDelayMs: 500, multiplier: 2, maxDelayMs: 10_000 };

  test('the first retry waits initialDelayMs', () => {
    expect(backoffDelay(retry, 1)).toBe(500);
  });

  test('grows exponentially by the multiplier', () => {
    expect([1, 2, 3, 4, 5].map((attempt) => backoffDelay(retry, attempt))).toEqual([
      500, 1000, 2000, 4000, 8000,
    ]);
  });

  test('is capped at maxDelayMs', () => {
    expect(backoffDelay(retry, 6)).toBe(10_000);
    expect(backoffDelay(retry, 50)).toBe(10_000);
  });

  test('multiplier 1 gives a fixed delay', () => {
    const fixed = { ...retry, multiplier: 1, initialDelayMs: 250 };
    expect([1, 2, 7].map((attempt) => backoffDelay(fixed, attempt))).toEqual([250, 250, 250]);
  });

  test('a fractional multiplier works', () => {
    expect(backoffDelay({ ...retry, multiplier: 1.5, initialDelayMs: 100 }, 3)).toBeCloseTo(225);
  });

  test('a cap below the initial delay wins', () => {
    expect(backoffDelay({ ...retry, maxDelayMs: 100 }, 1)).toBe(100);
  });

  test('zero initial delay retries immediately', () => {
    expect(backoffDelay({ ...retry, initialDelayMs: 0 }, 4)).toBe(0);
  });
});
