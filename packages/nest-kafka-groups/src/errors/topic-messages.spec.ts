import { describe, expect, test } from '@jest/globals';
import { KafkaMissingTopicError } from './kafka-missing-topic.error.js';
import { KafkaUnknownGroupTopicError } from './kafka-unknown-group-topic.error.js';

describe('messages naming topics, for one topic and for several', () => {
  test('KafkaMissingTopicError', () => {
    expect(new KafkaMissingTopicError(['a'], 'g', ['h'], 'user u').message).toBe(
      'Consumer group "g" needs "a", which does not exist and topic creation is off: create it, or set topics: ' +
        '{ create: true } in KafkaModule.forRoot, forFeature or @KafkaHandler (the group starts as soon as it ' +
        'exists); "h" is hidden from user u without DESCRIBE (whether it exists is not known): grant DESCRIBE',
    );
    expect(new KafkaMissingTopicError(['a', 'b'], 'g', ['h', 'i'], 'user u').message).toBe(
      'Consumer group "g" needs "a", "b", which do not exist and topic creation is off: create them, or set ' +
        'topics: { create: true } in KafkaModule.forRoot, forFeature or @KafkaHandler (the group starts as soon as ' +
        'they exist); "h", "i" are hidden from user u without DESCRIBE (whether they exist is not known): grant ' +
        'DESCRIBE',
    );
  });

  test('KafkaUnknownGroupTopicError', () => {
    expect(new KafkaUnknownGroupTopicError('g', 'x', ['a', 'b']).message).toBe(
      'Consumer group "g" does not consume topic "x" (its topics: "a", "b")',
    );
  });
});
