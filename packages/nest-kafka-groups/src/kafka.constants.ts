/** Transport id of `KafkaGroupsServer`: Nest binds only handlers declared for this transport to it. */
export const KAFKA_GROUPS_TRANSPORT = Symbol('KAFKA_GROUPS_TRANSPORT');

/** Key in a pattern's extras that marks a handler as this library's and carries its declaration. */
export const KAFKA_HANDLER_EXTRAS = 'kafkaGroupsHandler';

/** Method metadata set by `@KafkaHandler`, read at start-up to find misplaced handlers. */
export const KAFKA_HANDLER_METADATA = 'kafka-groups:handler';

/** Injection token of the validated `forRoot` options (KafkaModuleOptions). */
export const KAFKA_MODULE_OPTIONS = Symbol('KAFKA_MODULE_OPTIONS');
export const KAFKA_FEATURE_OPTIONS = Symbol('KAFKA_FEATURE_OPTIONS');
/** Injection token of the library's kafkajs `Kafka` client (carried fixes, codecs, Nest logging). */
export const KAFKA_CLIENT = Symbol('KAFKA_CLIENT');
