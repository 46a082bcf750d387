import { describe, expect, test } from '@jest/globals';
import { DEFAULT_RETRY_TOPIC_SUFFIX, type RetryTopicNaming, retryTopicNames } from './retry-topic-names.js';

const delay = { suffix: DEFAULT_RETRY_TOPIC_SUFFIX, suffixing: 'delay' as const };
const index = { suffix: DEFAULT_RETRY_TOPIC_SUFFIX, suffixing: 'index' as const };
/** The suffixes after "t", as Spring's DestinationTopicPropertiesFactoryTests state them. */
const suffixes = (delays: number[], naming: RetryTopicNaming = delay) =>
  retryTopicNames('t', delays, naming).map((n) => n.slice(1));

describe("retryTopicNames (Spring's DestinationTopicPropertiesFactory, default strategies)", () => {
  test('one topic per delay, suffixed with the delay', () => {
    expect(retryTopicNames('orders', [1000, 10000, 60000], delay)).toEqual([
      'orders-retry-1000',
      'orders-retry-10000',
      'orders-retry-60000',
    ]);
    expect(suffixes([1000, 2000])).toEqual(['-retry-1000', '-retry-2000']);
  });

  test('a single delay, or equal delays, use one "-retry" topic', () => {
    expect(suffixes([1000])).toEqual(['-retry']);
    expect(suffixes([1000, 1000, 1000])).toEqual(['-retry', '-retry', '-retry']);
  });

  test('a trailing run of the maximum delay shares the topic of its first', () => {
    expect(suffixes([1000, 2000, 3000, 3000])).toEqual([
      '-retry-1000',
      '-retry-2000',
      '-retry-3000',
      '-retry-3000',
    ]);
  });

  test('repeated delays in the middle share their topic by name', () => {
    expect(suffixes([1000, 2000, 2000, 2000, 3000])).toEqual([
      '-retry-1000',
      '-retry-2000',
      '-retry-2000',
      '-retry-2000',
      '-retry-3000',
    ]);
  });

  test('index suffixing', () => {
    expect(suffixes([1000, 2000, 3000, 3000], index)).toEqual([
      '-retry-0',
      '-retry-1',
      '-retry-2',
      '-retry-2',
    ]);
    expect(suffixes([1000, 2000, 2000, 2000, 3000], index)).toEqual([
      '-retry-0',
      '-retry-1',
      '-retry-2',
      '-retry-3',
      '-retry-4',
    ]);
    expect(suffixes([500], index)).toEqual(['-retry']);
  });

  test('a custom suffix, and a function that names every topic', () => {
    expect(retryTopicNames('t', [5, 7], { ...delay, suffix: '.again' })).toEqual(['t.again-5', 't.again-7']);
    expect(
      retryTopicNames('t', [5, 7], { ...delay, topicName: (topic, ms, i) => `${topic}.r${i}.${ms}` }),
    ).toEqual(['t.r0.5', 't.r1.7']);
  });

  test('no delays, no retry topics', () => {
    expect(retryTopicNames('t', [], delay)).toEqual([]);
  });
});
