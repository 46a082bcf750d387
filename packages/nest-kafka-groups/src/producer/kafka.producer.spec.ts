import { describe, expect, test } from '@jest/globals';
import { hasLostSequence } from './kafka.producer.js';

describe('hasLostSequence', () => {
  test('recognises the broker errors after which the idempotent sequences are out of step', () => {
    for (const type of ['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']) {
      expect(hasLostSequence({ type })).toBe(true);
    }
  });

  test('looks through the retry errors kafkajs wraps them in', () => {
    const protocolError = { type: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
    expect(hasLostSequence({ name: 'KafkaJSNumberOfRetriesExceeded', originalError: protocolError })).toBe(
      true,
    );
    expect(hasLostSequence(new Error('send failed', { cause: protocolError }))).toBe(true);
  });

  test('other failures keep the producer', () => {
    expect(hasLostSequence({ type: 'UNKNOWN_TOPIC_OR_PARTITION' })).toBe(false);
    expect(hasLostSequence(new Error('connection refused'))).toBe(false);
    expect(hasLostSequence(undefined)).toBe(false);
  });
});
