import { describe, expect, test } from '@jest/globals';
import { INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';
import {
  PATTERN_EXTRAS_METADATA,
  PATTERN_METADATA,
  TRANSPORT_METADATA,
} from '@nestjs/microservices/constants.js';
import { KafkaConfigurationError } from '../errors/kafka-configuration.error.js';
import { KafkaHandlerDefinitionError } from '../errors/kafka-handler-definition.error.js';
import { KAFKA_GROUPS_TRANSPORT, KAFKA_HANDLER_EXTRAS, KAFKA_HANDLER_METADATA } from '../kafka.constants.js';
import type { KafkaHandlerOptions } from '../kafka.options.js';
import { type KafkaHandlerDeclaration, KafkaHandler } from './kafka-handler.decorator.js';

/** Runs a class definition (decorators apply when the class is defined) and returns what it threw. */
function thrownBy(define: () => unknown): unknown {
  try {
    define();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('@KafkaHandler', () => {
  test('records the declaration and binds the method to the Kafka groups transport', () => {
    const options: KafkaHandlerOptions = { retry: { attempts: 5 }, raw: true };
    class PositionsController {
      @KafkaHandler(['airnav', 'flight24'], options)
      handle() {}
    }
    const method = PositionsController.prototype.handle;
    const declaration = Reflect.getMetadata(KAFKA_HANDLER_METADATA, method) as KafkaHandlerDeclaration;
    expect(declaration).toEqual({
      topics: ['airnav', 'flight24'],
      options,
      declaringClass: PositionsController,
      methodName: 'handle',
    });
    expect(Reflect.getMetadata(PATTERN_METADATA, method)).toEqual(['airnav', 'flight24']);
    expect(Reflect.getMetadata(TRANSPORT_METADATA, method)).toBe(KAFKA_GROUPS_TRANSPORT);
    expect(Reflect.getMetadata(PATTERN_EXTRAS_METADATA, method)).toEqual({
      [KAFKA_HANDLER_EXTRAS]: declaration,
    });
    // No interceptor on the hot path: the transport builds the pipeline and sees errors as thrown.
    expect(Reflect.getMetadata(INTERCEPTORS_METADATA, method)).toBeUndefined();
  });

  test('a single topic string becomes a one-element list with empty options', () => {
    class SingleController {
      @KafkaHandler('airnav')
      handle() {}
    }
    const declaration = Reflect.getMetadata(
      KAFKA_HANDLER_METADATA,
      SingleController.prototype.handle,
    ) as KafkaHandlerDeclaration;
    expect(declaration.topics).toEqual(['airnav']);
    expect(declaration.options).toEqual({});
  });

  test('two @KafkaHandler on one method throw KafkaHandlerDefinitionError naming Class.method', () => {
    const error = thrownBy(() => {
      class TwiceController {
        @KafkaHandler('a')
        @KafkaHandler('b')
        handle() {}
      }
      return TwiceController;
    });
    expect(error).toBeInstanceOf(KafkaHandlerDefinitionError);
    expect((error as Error).message).toContain('TwiceController.handle has two @KafkaHandler decorators');
  });

  test('a subclass may redeclare an inherited handler method', () => {
    class BaseController {
      @KafkaHandler('a')
      handle() {}
    }
    class ChildController extends BaseController {
      @KafkaHandler('b')
      override handle() {}
    }
    const child = Reflect.getMetadata(
      KAFKA_HANDLER_METADATA,
      ChildController.prototype.handle,
    ) as KafkaHandlerDeclaration;
    expect(child.topics).toEqual(['b']);
    expect(child.declaringClass).toBe(ChildController);
    const base = Reflect.getMetadata(
      KAFKA_HANDLER_METADATA,
      BaseController.prototype.handle,
    ) as KafkaHandlerDeclaration;
    expect(base.topics).toEqual(['a']);
  });

  test.each([[''], ['   '], [[]], [['ok', '']]])(
    'topics %j throw KafkaHandlerDefinitionError naming Class.method',
    (topics) => {
      const error = thrownBy(() => {
        class EmptyTopicController {
          @KafkaHandler(topics as string | string[])
          consume() {}
        }
        return EmptyTopicController;
      });
      expect(error).toBeInstanceOf(KafkaHandlerDefinitionError);
      expect((error as Error).message).toContain('@KafkaHandler on EmptyTopicController.consume');
      expect((error as Error).message).toContain('non-empty topic name');
    },
  );

  test('invalid handler options throw KafkaConfigurationError naming the handler setting', () => {
    const error = thrownBy(() => {
      class BadOptionsController {
        @KafkaHandler('a', { retry: { attempts: 0 } })
        handle() {}
      }
      return BadOptionsController;
    });
    expect(error).toBeInstanceOf(KafkaConfigurationError);
    expect((error as KafkaConfigurationError).setting).toBe(
      '@KafkaHandler(BadOptionsController.handle).retry.attempts',
    );
    expect((error as Error).message).toContain('@KafkaHandler(BadOptionsController.handle).retry.attempts');
  });

  test('an invalid dead-letter topic option is refused', () => {
    const error = thrownBy(() => {
      class BadDltController {
        @KafkaHandler('a', { deadLetter: { topic: ' ' } })
        handle() {}
      }
      return BadDltController;
    });
    expect(error).toBeInstanceOf(KafkaConfigurationError);
    expect((error as KafkaConfigurationError).setting).toBe(
      '@KafkaHandler(BadDltController.handle).deadLetter.topic',
    );
  });

  test('a refused method records no metadata', () => {
    class PartlyController {
      handle() {}
    }
    const descriptor = Object.getOwnPropertyDescriptor(PartlyController.prototype, 'handle')!;
    expect(() =>
      KafkaHandler('a', { retry: { multiplier: 0 } })(PartlyController.prototype, 'handle', descriptor),
    ).toThrow(KafkaConfigurationError);
    expect(Reflect.hasOwnMetadata(KAFKA_HANDLER_METADATA, PartlyController.prototype.handle)).toBe(false);
    expect(Reflect.hasOwnMetadata(PATTERN_METADATA, PartlyController.prototype.handle)).toBe(false);
  });
});
