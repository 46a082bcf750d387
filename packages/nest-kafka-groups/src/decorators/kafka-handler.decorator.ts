import { EventPattern } from '@nestjs/microservices';
import { KafkaHandlerDefinitionError } from '../errors/kafka-handler-definition.error.js';
import { KAFKA_GROUPS_TRANSPORT, KAFKA_HANDLER_EXTRAS, KAFKA_HANDLER_METADATA } from '../kafka.constants.js';
import { type KafkaHandlerOptions, validateHandlerOptions } from '../kafka.options.js';

/** What `@KafkaHandler` records on a method; the server reads it from the pattern extras. */
export interface KafkaHandlerDeclaration {
  topics: string[];
  options: KafkaHandlerOptions;
  /** Class that declared the method (may be a base class of the registered controller). */
  declaringClass: Function;
  methodName: string;
}

/**
 * Serves the given topic(s) from the consumer group of the module this controller belongs to
 * (`KafkaModule.forFeature({ groupId })`), through Nest's pipeline: pipes, guards, interceptors, filters.
 */
export function KafkaHandler(topics: string | string[], options: KafkaHandlerOptions = {}): MethodDecorator {
  const topicList = ([] as string[]).concat(topics);
  return (target, propertyKey, descriptor) => {
    const methodName = String(propertyKey);
    const declaringClass = target.constructor;
    const where = `${declaringClass.name}.${methodName}`;
    if (topicList.length === 0 || topicList.some((t) => typeof t !== 'string' || t.trim() === '')) {
      throw new KafkaHandlerDefinitionError(
        `@KafkaHandler on ${where} needs at least one non-empty topic name`,
      );
    }
    if (new Set(topicList).size !== topicList.length) {
      throw new KafkaHandlerDefinitionError(
        `@KafkaHandler on ${where} lists a topic twice: ${topicList.join(', ')}`,
      );
    }
    if (Reflect.hasOwnMetadata(KAFKA_HANDLER_METADATA, descriptor.value as object)) {
      throw new KafkaHandlerDefinitionError(
        `${where} has two @KafkaHandler decorators; list every topic in one: @KafkaHandler(['a', 'b'])`,
      );
    }
    validateHandlerOptions(`@KafkaHandler(${where})`, options);
    const declaration: KafkaHandlerDeclaration = { topics: topicList, options, declaringClass, methodName };
    Reflect.defineMetadata(KAFKA_HANDLER_METADATA, declaration, descriptor.value as object);
    // Bound to this library's transport only, so no other transport (Nest's own Kafka one included) serves it.
    EventPattern(topicList, KAFKA_GROUPS_TRANSPORT, { [KAFKA_HANDLER_EXTRAS]: declaration })(
      target,
      propertyKey,
      descriptor,
    );
    return descriptor;
  };
}
