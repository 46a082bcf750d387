import { KafkaGroupsError } from './kafka-groups.error.js';

/** A `KafkaProducer.send` failed; the message names the topic. */
export class KafkaProducerError extends KafkaGroupsError {
  constructor(
    readonly topic: string,
    cause: unknown,
  ) {
    super(`Could not produce to topic "${topic}": ${(cause as Error)?.message ?? cause}`, { cause });
  }
}
