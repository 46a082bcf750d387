import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * A kafkajs client was disconnected (shutdown, a stopped member, a replaced producer) while it was still trying to
 * connect: the connect loop ended there. Not retriable, so no kafkajs retrier tries it again; the message names
 * the broker it was trying.
 */
export class KafkaConnectCancelledError extends KafkaGroupsError {
  readonly retriable = false;
}
