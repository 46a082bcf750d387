import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * The installed kafkajs is not the release whose internals the library's carried fixes replace (another version,
 * or the same version with a modified module): the library refuses to start rather than run without its fixes.
 */
export class KafkaClientCompatibilityError extends KafkaGroupsError {
  constructor(
    readonly kafkajsVersion: string,
    readonly module: string,
    reason: string,
  ) {
    super(`kafkajs ${kafkajsVersion}: ${module}: ${reason}`);
  }
}
