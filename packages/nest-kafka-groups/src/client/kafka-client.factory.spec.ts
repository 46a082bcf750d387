import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createKafkaClient } from './kafka-client.factory.js';

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
