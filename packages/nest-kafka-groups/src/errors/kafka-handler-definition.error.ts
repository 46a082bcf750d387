import { KafkaGroupsError } from './kafka-groups.error.js';

/** `@KafkaHandler` methods that cannot be served: no group, two handlers for one topic, on a provider, ... */
export class KafkaHandlerDefinitionError extends KafkaGroupsError {}
