import { describe, expect, test } from '@jest/globals';
import { BadRequestException, HttpException, InternalServerErrorException } from '@nestjs/common';
import { KafkaGuardRejectedError } from '../errors/kafka-guard-rejected.error.js';
import { KafkaNonRetryableError } from '../errors/kafka-non-retryable.error.js';
import { KafkaPayloadDecodeError } from '../errors/kafka-payload-decode.error.js';
import { KafkaProducerError } from '../errors/kafka-producer.error.js';
import { asError, httpExceptionReasons, isRetryable } from './failure-classifier.js';

class InvalidOrderError extends KafkaNonRetryableError {}

/** The RangeError the runtime itself throws when the stack runs out. */
function stackOverflow(): unknown {
  const recurse = (depth: number): number => recurse(depth + 1) + 1;
  try {
    return recurse(0);
  } catch (error) {
    return error;
  }
}

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
    ['a stack overflow (RangeError from deep nesting)', stackOverflow()],
  ])('%s is not retryable', (_name, error) => {
    expect(isRetryable(error)).toBe(false);
  });

  test.each([
    ['another HttpException', new InternalServerErrorException()],
    ['another library error', new KafkaProducerError('t', new Error('x'))],
    ['a thrown string', 'oops'],
    ['a plain object', { status: 'error', message: 'Internal server error' }],
    ['undefined', undefined],
    ['another RangeError (a failed allocation)', new RangeError('Array buffer allocation failed')],
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

describe('httpExceptionReasons', () => {
  test("ValidationPipe's reasons, all of them, instead of the status text", () => {
    const error = new BadRequestException(['lat must not be greater than 90', 'icao24 must be a string']);
    expect(error.message).toBe('Bad Request Exception');
    expect(httpExceptionReasons(error)).toBe('lat must not be greater than 90; icao24 must be a string');
  });

  test('nothing more when the message already is the reason', () => {
    expect(httpExceptionReasons(new BadRequestException('order id missing'))).toBeUndefined();
    expect(httpExceptionReasons(new BadRequestException({ message: 'order id missing' }))).toBeUndefined();
  });

  test('a body whose message is neither text nor a list says nothing more', () => {
    expect(httpExceptionReasons(new HttpException({ message: 42 }, 400))).toBeUndefined();
    expect(httpExceptionReasons(new HttpException({ message: { field: 'lat' } }, 400))).toBeUndefined();
    expect(httpExceptionReasons(new HttpException({ error: 'no message' }, 400))).toBeUndefined();
  });

  test('a null body is not read as an object', () => {
    expect(httpExceptionReasons(new HttpException(null as unknown as string, 500))).toBeUndefined();
  });

  test('nothing for other errors or exceptions without more to say', () => {
    expect(httpExceptionReasons(new Error('x'))).toBeUndefined();
    expect(httpExceptionReasons(new InternalServerErrorException())).toBeUndefined();
  });
});
