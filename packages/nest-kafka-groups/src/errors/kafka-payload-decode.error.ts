import { KafkaNonRetryableError } from './kafka-non-retryable.error.js';

/** The message value is not valid JSON (a poison pill): no retry can fix it. */
export class KafkaPayloadDecodeError extends KafkaNonRetryableError {
  constructor(topic: string, partition: number, offset: string, cause: unknown) {
    super(
      `Message value at ${topic}[${partition}]@${offset} is not valid JSON: ${(cause as Error)?.message ?? cause}`,
      { cause },
    );
  }
}
