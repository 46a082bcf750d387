import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * Throw this (or a subclass) from a handler when retrying cannot help: the message skips the remaining attempts
 * and goes straight to the dead-letter topic.
 */
export class KafkaNonRetryableError extends KafkaGroupsError {}
