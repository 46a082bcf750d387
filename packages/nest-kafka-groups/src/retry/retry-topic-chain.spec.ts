import { describe, expect, test } from '@jest/globals';
import type { KafkaMessage } from '../client/kafkajs.js';
import { DEFAULT_RETRY } from '../kafka.options.js';
import { RetryTopicChain, retryTopicDelays } from './retry-topic-chain.js';
import { encodeAttempts, RETRY_TOPIC_HEADERS } from './retry-topic-headers.js';

function message(headers: KafkaMessage['headers'] = {}): KafkaMessage {
  return {
    key: null,
    value: null,
    timestamp: '1700000000123',
    attributes: 0,
    offset: '7',
    headers,
  } as KafkaMessage;
}

describe('RetryTopicChain', () => {
  const chain = new RetryTopicChain('orders', [1000, 10000, 60000], 'orders-dlt');

  test('names its retry topics, each once, and counts the deliveries', () => {
    expect(chain.steps).toEqual(['orders-retry-1000', 'orders-retry-10000', 'orders-retry-60000']);
    expect(chain.topics).toEqual(chain.steps);
    expect(chain.attempts).toBe(4);
    const fixed = new RetryTopicChain('orders', [500, 500], 'orders-dlt');
    expect(fixed.steps).toEqual(['orders-retry', 'orders-retry']);
    expect(fixed.topics).toEqual(['orders-retry']);
  });

  test('the attempt: 1 on the main topic, the header elsewhere, else the topic position', () => {
    const withHeader = message({ [RETRY_TOPIC_HEADERS.attempts]: [encodeAttempts(2), encodeAttempts(3)] });
    expect(chain.attemptOf('orders', withHeader)).toBe(1);
    expect(chain.attemptOf('orders-retry-10000', withHeader)).toBe(3);
    expect(chain.attemptOf('orders-retry-10000', message())).toBe(3);
    expect(chain.attemptOf('orders-retry-1000', message())).toBe(2);
  });

  test('after attempt n fails, the retry topic of attempt n + 1, due after its delay', () => {
    const next = chain.next(1, true, message(), 50_000);
    expect(next).toMatchObject({ topic: 'orders-retry-1000', deadLetter: false, delayMs: 1000 });
    expect(next.headers).toMatchObject({ attempts: 2, dueAt: 51_000 });
    expect(next.headers.originalTimestamp.toString('hex')).toBe('018bcfe5687b');
    expect(chain.next(3, true, message(), 0)).toMatchObject({ topic: 'orders-retry-60000', delayMs: 60000 });
  });

  test('after the last attempt, or an error that cannot pass, the dead-letter topic at once', () => {
    expect(chain.next(4, true, message(), 50_000)).toMatchObject({
      topic: 'orders-dlt',
      deadLetter: true,
      delayMs: 0,
      headers: { attempts: 5, dueAt: 50_000 },
    });
    expect(chain.next(1, false, message(), 50_000)).toMatchObject({ topic: 'orders-dlt', deadLetter: true });
  });

  test('a chain with no delays sends failures to the dead-letter topic', () => {
    const none = new RetryTopicChain('t', [], 't-dlt');
    expect(none.topics).toEqual([]);
    expect(none.next(1, true, message(), 0).topic).toBe('t-dlt');
  });
});

describe('retryTopicDelays', () => {
  test('the given delays', () => {
    expect(retryTopicDelays({ ...DEFAULT_RETRY, topics: true, delaysMs: [300, 800] })).toEqual([300, 800]);
  });

  test("else the backoff's delays for attempts - 1 retries", () => {
    expect(retryTopicDelays({ ...DEFAULT_RETRY, topics: true })).toEqual([500, 1000]);
    expect(
      retryTopicDelays({ attempts: 5, initialDelayMs: 1000, multiplier: 2, maxDelayMs: 3000, topics: true }),
    ).toEqual([1000, 2000, 3000, 3000]);
    expect(retryTopicDelays({ ...DEFAULT_RETRY, attempts: 1, topics: true })).toEqual([]);
  });
});
