import { KafkaNonRetryableError } from './kafka-non-retryable.error.js';

/**
 * A record batch fetched from Kafka could not be decoded: corrupt compressed data, or more than the bound
 * (`maxDecompressedBatchBytes`) once decompressed. The same bytes fail every time, so it is never retried.
 */
export class KafkaBatchDecodeError extends KafkaNonRetryableError {
  constructor(
    readonly codec: string,
    readonly problem: string,
    cause?: unknown,
  ) {
    super(`A ${codec} record batch ${problem}`, cause === undefined ? undefined : { cause });
  }
}
