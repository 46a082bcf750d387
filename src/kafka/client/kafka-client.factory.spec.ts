import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createKafkaClient } from './kafka-client.factory.js';

describe('kafkajs log bridge', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  function logged(level: 'log' | 'warn' | 'error'): string[] {
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
    expect(lines).toHaveLength(1);
    // kafkajs adds a timestamp and its logger name to the extra fields.
    expect(lines[0]).toMatch(/^Odd fetch \{"timestamp":"[^"]+","logger":"kafkajs",/);
    expect(lines[0]).toContain('"offset":"18446744073709551616","cycle":{"self":"[Circular]"}}');
  });

  test('control characters in the message and in extra fields are escaped', () => {
    const lines = logged('error');
    const logger = createKafkaClient({ brokers: ['127.0.0.1:1'] }).logger();
    logger.error('bad\u001b[2Jkey\nFAKE', { key: 'x\u001by' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^bad\\x1b\[2Jkey\\x0aFAKE \{/);
    expect(lines[0]).toContain('"key":"x\\u001by"}');
    // eslint-disable-next-line no-control-regex -- looking for raw control characters is the point
    expect(lines[0]).not.toMatch(/[\u0000-\u001f]/);
  });
});
