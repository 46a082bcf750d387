import { KafkaGroupsError } from './kafka-groups.error.js';

/** A `forRoot` / `forFeature` / `@KafkaHandler` option is missing or invalid. The message names the setting. */
export class KafkaConfigurationError extends KafkaGroupsError {
  constructor(
    readonly setting: string,
    problem: string,
  ) {
    super(`Invalid Kafka setting "${setting}": ${problem}`);
  }
}
