import { describe, expect, test } from '@jest/globals';
import { plural, quotedTopics, topicResource } from './topic-names.js';

describe('topic names in messages', () => {
  test('quotedTopics lists each name quoted', () => {
    expect(quotedTopics(['orders'])).toBe('"orders"');
    expect(quotedTopics(['orders', 'orders-dlt'])).toBe('"orders", "orders-dlt"');
  });

  test('topicResource: singular for one topic, plural for several or none (named unknown)', () => {
    expect(topicResource(['orders'])).toBe('topic orders');
    expect(topicResource(['orders', 'orders-dlt'])).toBe('topics orders, orders-dlt');
    expect(topicResource([])).toBe('topics (unknown)');
  });

  test('plural picks the singular form for exactly one item', () => {
    expect(plural(['a'], 'it', 'them')).toBe('it');
    expect(plural(['a', 'b'], 'it', 'them')).toBe('them');
    expect(plural([], 'it', 'them')).toBe('them');
  });
});
