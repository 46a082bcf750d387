import type { KafkaMessageLimits } from '../kafka.options.js';
import { KafkaNonRetryableError } from './kafka-non-retryable.error.js';

/** A message is over one of the `limits` (too many headers, too large, too deep...): the same bytes fail again. */
export class KafkaMessageLimitError extends KafkaNonRetryableError {
  constructor(
    readonly limit: keyof KafkaMessageLimits,
    /** What the message has; for the JSON bounds, where counting stopped (the first value over the bound). */
    readonly actual: number,
    readonly max: number,
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
  ) {
    super(`Message at ${topic}[${partition}]@${offset} is over limits.${limit}: ${actual} > ${max}`);
  }
}
