import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createKafkaClient, RepeatedWarnings } from './kafka-client.factory.js';

describe('kafkajs log bridge', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  function logged(level: 'warn'): string[] {
    const lines: string[] = [];
    jest.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => {
      lines.push(String(message));
    });
    return lines;
  }

  test('extra fields holding a BigInt or a cycle are logged, not thrown', () => {
    const lines = logged('warn');
    const logger = createKafkaClient({ brokers: ['127.0.0.1:1'] }).logger();
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => logger.warn('Odd fetch', { offset: 2n ** 64n, cycle })).not.toThrow();
    expect(lines).toEqual(['Odd fetch {"offset":"18446744073709551616","cycle":{"self":"[Circular]"}}']);
  });

  test('control characters in the message and in extra fields are escaped', () => {
    const lines = logged('warn');
    const logger = createKafkaClient({ brokers: ['127.0.0.1:1'] }).logger();
    logger.warn('bad\u001b[2Jkey\nFAKE', { key: 'x\u001by' });
    expect(lines).toEqual(['bad\\x1b[2Jkey\\x0aFAKE {"key":"x\\u001by"}']);
  });
});

describe('repeated kafkajs warnings', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  test('a text printed within the window is not printed again; after it, it is', () => {
    const warnings = new RepeatedWarnings(1_000, 10);
    expect(warnings.print('a', 0)).toBe(true);
    expect(warnings.print('a', 999)).toBe(false);
    expect(warnings.print('a', 1_000)).toBe(true);
  });

  test('texts whose window passed are forgotten as new ones come: the texts remembered shrink', () => {
    const warnings = new RepeatedWarnings(1_000, 10);
    for (let i = 0; i < 8; i++) warnings.print(`broker ${i} unreachable`, i);
    expect(warnings.size).toBe(8);
    warnings.print('another text', 1_005);
    // Texts 0-5 are older than the window: dropped; 6 and 7 still suppress a repeat.
    expect(warnings.size).toBe(3);
    expect(warnings.print('broker 7 unreachable', 1_006)).toBe(false);
  });

  test('never more than `limit` texts: the oldest goes first', () => {
    const warnings = new RepeatedWarnings(60_000, 3);
    for (let i = 0; i < 10; i++) warnings.print(`text ${i}`, i);
    expect(warnings.size).toBe(3);
    expect(warnings.print('text 9', 10)).toBe(false);
    expect(warnings.print('text 0', 10)).toBe(true);
  });

  test('the log bridge prints a repeated warning once, the repeat at debug', () => {
    const lines: string[] = [];
    for (const level of ['warn', 'debug'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => {
        lines.push(`${level} ${String(message)}`);
      });
    }
    const logger = createKafkaClient({ brokers: ['127.0.0.1:1'] }).logger();
    logger.warn('Broker unreachable');
    logger.warn('Broker unreachable');
    expect(lines).toEqual(['warn Broker unreachable', 'debug Broker unreachable']);
  });
});
