import { describe, expect, test } from '@jest/globals';
import { BadRequestException, InternalServerErrorException } from '@nestjs/common';
import { KafkaGuardRejectedError } from '../errors/kafka-guard-rejected.error.js';
import { KafkaNonRetryableError } from '../errors/kafka-non-retryable.error.js';
import { KafkaPayloadDecodeError } from '../errors/kafka-payload-decode.error.js';
import { KafkaProducerError } from '../errors/kafka-producer.error.js';
import { asError, isRetryable } from './failure-classifier.js';

class InvalidOrderError extends KafkaNonRetryableError {}

describe('isRetryable', () => {
  test('a plain Error is retryable', () => {
    expect(isRetryable(new Error('database timeout'))).toBe(true);
  });

  test.each([
    ['KafkaNonRetryableError', new (class extends KafkaNonRetryableError {})('no')],
    ['KafkaPayloadDecodeError', new KafkaPayloadDecodeError('t', 0, '1', new SyntaxError('bad'))],
    ['KafkaGuardRejectedError', new KafkaGuardRejectedError('t', 'g', 'forbidden')],
    ['a user subclass of KafkaNonRetryableError', new InvalidOrderError('invalid order')],
    [
      'BadRequestException (ValidationPipe)',
      new BadRequestException(['icao24 must be 6 lowercase hex digits']),
    ],
  ])('%s is not retryable', (_name, error) => {
    expect(isRetryable(error)).toBe(false);
  });

  test.each([
    ['another HttpException', new InternalServerErrorException()],
    ['another library error', new KafkaProducerError('t', new Error('x'))],
    ['a thrown string', 'oops'],
    ['a plain object', { status: 'error', message: 'Internal server error' }],
    ['undefined', undefined],
  ])('%s is retryable', (_name, error) => {
    expect(isRetryable(error)).toBe(true);
  });
});

describe('asError', () => {
  test('returns an Error unchanged', () => {
    const error = new TypeError('x');
    expect(asError(error)).toBe(error);
  });

  test('takes the message of a plain {status, message} object', () => {
    const error = asError({ status: 'error', message: 'Internal server error' });
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('Internal server error');
  });

  test('stringifies a non-string message', () => {
    expect(asError({ status: 400, message: ['a', 'b'] }).message).toBe('a,b');
  });

  test('stringifies anything else', () => {
    expect(asError('plain string').message).toBe('plain string');
    expect(asError(42).message).toBe('42');
    expect(asError(null).message).toBe('null');
    expect(asError(undefined).message).toBe('undefined');
    expect(asError({ status: 500 }).message).toBe('[object Object]');
  });
});
