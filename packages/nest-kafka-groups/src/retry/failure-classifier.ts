import { BadRequestException, HttpException } from '@nestjs/common';
import { KafkaNonRetryableError } from '../errors/kafka-non-retryable.error.js';

/**
 * Whether retrying can possibly help. Not for bad JSON or our non-retryable errors, nor for a payload that failed
 * validation: ValidationPipe (and other pipes) reject with BadRequestException, which the same bytes hit again;
 * nor for a stack overflow.
 */
export function isRetryable(error: unknown): boolean {
  return !(
    error instanceof KafkaNonRetryableError ||
    error instanceof BadRequestException ||
    isStackOverflow(error)
  );
}

/**
 * A stack overflow in a handler's pipeline comes from the shape of the message (class-transformer and
 * class-validator recurse once per nesting level), so the same bytes overflow again. Other RangeErrors (a failed
 * buffer allocation under memory pressure) may pass on retry.
 */
function isStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && error.message.startsWith(STACK_OVERFLOW);
}

const STACK_OVERFLOW = 'Maximum call stack size exceeded';

/** Turns whatever was thrown (Nest filters may throw plain objects) into an Error for logs and dead letters. */
export function asError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  const message =
    typeof thrown === 'object' && thrown !== null && 'message' in thrown
      ? String((thrown as { message: unknown }).message)
      : String(thrown);
  return new Error(message);
}

/**
 * The reasons an HttpException carries in its response body (ValidationPipe's `lat must not be greater than 90`),
 * where its message is only the status text (`Bad Request Exception`); undefined when there is nothing more.
 */
export function httpExceptionReasons(error: unknown): string | undefined {
  if (!(error instanceof HttpException)) return undefined;
  const response = error.getResponse();
  const reasons =
    typeof response === 'object' && response !== null
      ? (response as { message?: unknown }).message
      : response;
  const text = Array.isArray(reasons)
    ? reasons.map(String).join('; ')
    : typeof reasons === 'string'
      ? reasons
      : undefined;
  return text && text !== error.message ? text : undefined;
}
