import { describe, expect, test } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { KafkaNonRetryableError } from '../errors/kafka-non-retryable.error.js';
import { KafkaPayloadDecodeError } from '../errors/kafka-payload-decode.error.js';
import { DEFAULT_DEAD_LETTER, DEFAULT_LIMITS, type ResolvedHandlerSettings } from '../kafka.options.js';
import { decide } from './failure-policy.js';

const settings = (attempts: number, deadLetters: boolean): ResolvedHandlerSettings => ({
  retry: { attempts, initialDelayMs: 100, multiplier: 2, maxDelayMs: 300 },
  deadLetter: { ...DEFAULT_DEAD_LETTER, enabled: deadLetters },
  limits: DEFAULT_LIMITS,
  topics: { create: false, config: {} },
  raw: false,
});

const transient = new Error('database timeout');
const permanent = new (class InvalidOrder extends KafkaNonRetryableError {})('invalid order');
const validation = new BadRequestException(['seq must be an integer']);
const decodeError = new KafkaPayloadDecodeError('t', 0, '7', new SyntaxError('bad JSON'));
const aborted = new DOMException('This operation was aborted', 'AbortError');

describe('decide', () => {
  test.each([
    // error,        attempt, shutting down, attempts, dead letters, expected
    [undefined, 1, false, 3, true, { action: 'resolve' }],
    [undefined, 3, false, 3, false, { action: 'resolve' }],
    [undefined, 1, true, 3, true, { action: 'resolve' }],
    [transient, 1, false, 3, true, { action: 'retry', delayMs: 100 }],
    [transient, 2, false, 3, true, { action: 'retry', delayMs: 200 }],
    [transient, 3, false, 5, true, { action: 'retry', delayMs: 300 }],
    [transient, 3, false, 3, true, { action: 'dead-letter' }],
    [transient, 3, false, 3, false, { action: 'stop' }],
    [transient, 1, false, 1, true, { action: 'dead-letter' }],
    [transient, 1, false, 1, false, { action: 'stop' }],
    [permanent, 1, false, 3, true, { action: 'dead-letter' }],
    [permanent, 1, false, 3, false, { action: 'stop' }],
    [validation, 1, false, 3, true, { action: 'dead-letter' }],
    [decodeError, 1, false, 3, true, { action: 'dead-letter' }],
    // Shutdown: whatever failed, on whatever attempt, is neither an attempt nor a dead letter.
    [aborted, 1, true, 1, true, { action: 'release' }],
    [aborted, 3, true, 3, true, { action: 'release' }],
    [transient, 1, true, 1, false, { action: 'release' }],
    [permanent, 1, true, 3, true, { action: 'release' }],
    [decodeError, 1, true, 3, true, { action: 'release' }],
  ])(
    '%p on attempt %i (shutting down: %p, attempts %i, dead letters %p) -> %p',
    (error, attempt, down, attempts, dlt, expected) => {
      expect(decide(error, attempt, down, settings(attempts, dlt))).toEqual(expected);
    },
  );

  test('a handler that honours the aborted signal outside shutdown (a timeout) is an ordinary, retryable failure', () => {
    expect(decide(aborted, 1, false, settings(3, true))).toEqual({ action: 'retry', delayMs: 100 });
  });

  describe('with retry topics (every delivery one attempt, two delays)', () => {
    const topics = (deadLetters: boolean): ResolvedHandlerSettings => {
      const base = settings(3, deadLetters);
      return { ...base, retry: { ...base.retry, topics: true, delaysMs: [300, 800] } };
    };

    test.each([
      [undefined, 1, false, true, { action: 'resolve' }],
      [transient, 1, false, true, { action: 'forward' }],
      [transient, 2, false, true, { action: 'forward' }],
      [transient, 2, false, false, { action: 'forward' }],
      [transient, 3, false, true, { action: 'dead-letter' }],
      [transient, 3, false, false, { action: 'stop' }],
      [permanent, 1, false, true, { action: 'dead-letter' }],
      [validation, 2, false, false, { action: 'stop' }],
      [transient, 1, true, true, { action: 'release' }],
    ])(
      '%p on attempt %i (shutting down: %p, dead letters %p) -> %p',
      (error, attempt, down, dlt, expected) => {
        expect(decide(error, attempt, down, topics(dlt))).toEqual(expected);
      },
    );
  });
});
