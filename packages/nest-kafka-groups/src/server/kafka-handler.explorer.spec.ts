import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Bind, Controller, Injectable, Module, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { KafkaGroupContext } from '../context/kafka-group.context.js';
import { KafkaHandler } from '../decorators/kafka-handler.decorator.js';
import { KafkaDecoratorMetadataError } from '../errors/kafka-decorator-metadata.error.js';
import { KafkaHandlerDefinitionError } from '../errors/kafka-handler-definition.error.js';
import { KAFKA_FEATURE_OPTIONS } from '../kafka.constants.js';
import type { KafkaFeatureOptions } from '../kafka.options.js';
import type { DiscoveredHandler } from './group-plan.js';
import type { HandlerInvoker } from './handler-pipeline.js';
import { KafkaHandlerExplorer } from './kafka-handler.explorer.js';

/** A module that declares a group the way `KafkaModule.forFeature` does (a provider the server looks for). */
function group(groupId: string): Type {
  @Module({
    providers: [{ provide: KAFKA_FEATURE_OPTIONS, useValue: { groupId } }],
    exports: [KAFKA_FEATURE_OPTIONS],
  })
  class GroupModule {}
  return GroupModule;
}

/** Compiles the modules (no transport, no broker) and explores them, each invoker passed through `wrap`. */
async function explore(
  modules: Type[],
  wrap: (invoke: HandlerInvoker) => HandlerInvoker = (invoke) => invoke,
): Promise<DiscoveredHandler[]> {
  const app = await Test.createTestingModule({
    imports: [DiscoveryModule, ...modules],
    providers: [KafkaHandlerExplorer],
  }).compile();
  try {
    return app.get(KafkaHandlerExplorer).explore(wrap);
  } finally {
    await app.close();
  }
}

async function thrownBy(run: Promise<unknown>): Promise<unknown> {
  return run.then(
    () => undefined,
    (error: unknown) => error,
  );
}

class BaseController {
  @KafkaHandler('shared')
  handle(): void {}
}

@Controller()
class AirnavController extends BaseController {}

@Controller()
class Flight24Controller extends BaseController {
  @KafkaHandler(['raw-a', 'raw-b'])
  raw(@Payload() bytes: Buffer): Buffer {
    return bytes;
  }

  notAHandler(): void {}
}

@Module({ imports: [group('airnav')], controllers: [AirnavController] })
class AirnavModule {}

@Module({ imports: [group('flight24')], controllers: [Flight24Controller] })
class Flight24Module {}

describe('KafkaHandlerExplorer', () => {
  test('one entry per topic, with the registered controller, its module and that module’s group', async () => {
    const found = await explore([AirnavModule, Flight24Module]);
    const summary = found.map((h) => ({
      topic: h.topic,
      controller: h.controllerName,
      module: h.moduleName,
      groupId: (h.feature as KafkaFeatureOptions | undefined)?.groupId,
      method: h.declaration.methodName,
      buffer: h.payloadIsBuffer,
    }));
    expect(summary).toEqual([
      {
        topic: 'shared',
        controller: 'AirnavController',
        module: 'AirnavModule',
        groupId: 'airnav',
        method: 'handle',
        buffer: false,
      },
      {
        topic: 'raw-a',
        controller: 'Flight24Controller',
        module: 'Flight24Module',
        groupId: 'flight24',
        method: 'raw',
        buffer: true,
      },
      {
        topic: 'raw-b',
        controller: 'Flight24Controller',
        module: 'Flight24Module',
        groupId: 'flight24',
        method: 'raw',
        buffer: true,
      },
      {
        topic: 'shared',
        controller: 'Flight24Controller',
        module: 'Flight24Module',
        groupId: 'flight24',
        method: 'handle',
        buffer: false,
      },
    ]);
  });

  test('passes each method’s invoker through wrap once, shared by its topics', async () => {
    const wrapped: HandlerInvoker[] = [];
    const found = await explore([Flight24Module], (invoke) => {
      const outer: HandlerInvoker = (data, context) => invoke(data, context);
      wrapped.push(outer);
      return outer;
    });
    expect(wrapped).toHaveLength(2);
    expect(found.map((h) => wrapped.indexOf(h.invoke))).toEqual([0, 0, 1]);
  });

  test('a module without forFeature gives handlers without a group (the plan then names the module)', async () => {
    @Module({ controllers: [AirnavController] })
    class NoGroupModule {}
    const [handler] = await explore([NoGroupModule]);
    expect(handler.feature).toBeUndefined();
    expect(handler.moduleName).toBe('NoGroupModule');
  });

  test('a handler on a provider is a definition error naming class, method and module', async () => {
    @Injectable()
    class PositionsService {
      @KafkaHandler('positions')
      handle(): void {}
    }
    @Module({ providers: [PositionsService] })
    class ServiceModule {}
    const error = await thrownBy(explore([ServiceModule]));
    expect(error).toBeInstanceOf(KafkaHandlerDefinitionError);
    expect((error as Error).message).toBe(
      '@KafkaHandler on PositionsService.handle, a provider of module ServiceModule: handlers must be controller ' +
        'methods; move it into a @Controller()',
    );
  });

  test('a module importing two groups is a definition error naming both', async () => {
    @Module({ imports: [group('a'), group('b')], controllers: [AirnavController] })
    class TwoGroupsModule {}
    const error = await thrownBy(explore([TwoGroupsModule]));
    expect(error).toBeInstanceOf(KafkaHandlerDefinitionError);
    expect((error as Error).message).toMatch(
      /^Module TwoGroupsModule imports KafkaModule.forFeature for several groups \(a, b\)/,
    );
  });

  // A transform without decorator metadata (esbuild, tsx, Vite before 8) emits the decorators but no design:* types.
  describe('a handler compiled without decorator metadata', () => {
    class OrderDto {}

    test('with a @Payload() parameter: a start-up error naming the handler and the setting', async () => {
      @Controller()
      class OrdersController {
        @KafkaHandler('orders')
        handle(@Payload() order: OrderDto): OrderDto {
          return order;
        }
      }
      Reflect.deleteMetadata('design:paramtypes', OrdersController.prototype, 'handle');
      @Module({ imports: [group('orders')], controllers: [OrdersController] })
      class OrdersModule {}
      const error = await thrownBy(explore([OrdersModule]));
      expect(error).toBeInstanceOf(KafkaDecoratorMetadataError);
      expect(error).toBeInstanceOf(KafkaHandlerDefinitionError);
      expect((error as Error).message).toMatch(
        /^OrdersController\.handle has no decorator metadata \(design:paramtypes\), so its @Payload\(\) parameter has no type: .*"emitDecoratorMetadata"/,
      );
    });

    test('an inherited handler is named by the registered controller', async () => {
      class Base {
        @KafkaHandler('orders')
        handle(@Payload() order: OrderDto): OrderDto {
          return order;
        }
      }
      Reflect.deleteMetadata('design:paramtypes', Base.prototype, 'handle');
      @Controller()
      class ShopController extends Base {}
      @Module({ imports: [group('orders')], controllers: [ShopController] })
      class ShopModule {}
      const error = await thrownBy(explore([ShopModule]));
      expect((error as Error).message).toMatch(/^ShopController\.handle has no decorator metadata/);
    });

    test('without a @Payload() parameter nothing depends on the types: served as before', async () => {
      @Controller()
      class PlainController {
        @KafkaHandler('plain')
        handle(payload: unknown): unknown {
          return payload;
        }
      }
      Reflect.deleteMetadata('design:paramtypes', PlainController.prototype, 'handle');
      @Module({ imports: [group('plain')], controllers: [PlainController] })
      class PlainModule {}
      const [handler] = await explore([PlainModule]);
      expect(handler.topic).toBe('plain');
    });
  });

  /**
   * A controller written in JavaScript as Nest documents it: parameters bound with `@Bind(Payload(), Ctx())`, the
   * decorators applied as Babel's legacy decorators apply them, and no compiler to emit design:paramtypes.
   */
  describe('a JavaScript controller', () => {
    function javascriptController(methodDecorators: MethodDecorator[]): Type {
      class OrdersController {
        handle(order: unknown): unknown {
          return order;
        }
      }
      const descriptor = Object.getOwnPropertyDescriptor(OrdersController.prototype, 'handle')!;
      Reflect.defineProperty(
        OrdersController.prototype,
        'handle',
        Reflect.decorate(
          [KafkaHandler('orders') as MethodDecorator, Bind(Payload(), Ctx()), ...methodDecorators],
          OrdersController.prototype,
          'handle',
          descriptor,
        ) as PropertyDescriptor,
      );
      Reflect.decorate([Controller()], OrdersController);
      return OrdersController;
    }

    test('without declared types: the start-up error says how JavaScript declares them', async () => {
      const controller = javascriptController([]);
      expect(Reflect.getMetadata('design:paramtypes', controller.prototype, 'handle')).toBeUndefined();
      @Module({ imports: [group('orders')], controllers: [controller] })
      class OrdersModule {}
      const error = await thrownBy(explore([OrdersModule]));
      expect(error).toBeInstanceOf(KafkaDecoratorMetadataError);
      expect((error as Error).message).toContain(
        "In JavaScript, declare the types on the method: @Reflect.metadata('design:paramtypes', [Object, KafkaGroupContext])",
      );
    });

    test('with the types declared as the error says: served, a Buffer type gets the raw bytes', async () => {
      const decoded = javascriptController([
        Reflect.metadata('design:paramtypes', [Object, KafkaGroupContext]),
      ]);
      const raw = javascriptController([Reflect.metadata('design:paramtypes', [Buffer, KafkaGroupContext])]);
      @Module({ imports: [group('orders')], controllers: [decoded] })
      class DecodedModule {}
      @Module({ imports: [group('raw-orders')], controllers: [raw] })
      class RawModule {}
      const [decodedHandler] = await explore([DecodedModule]);
      const [rawHandler] = await explore([RawModule]);
      expect([decodedHandler.payloadIsBuffer, rawHandler.payloadIsBuffer]).toEqual([false, true]);
    });
  });
});
