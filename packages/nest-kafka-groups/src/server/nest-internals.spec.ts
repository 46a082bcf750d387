import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  type ArgumentsHost,
  type CallHandler,
  Catch,
  type CanActivate,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  ForbiddenException,
  Injectable,
  Module,
  type NestInterceptor,
  ParseIntPipe,
  type PipeTransform,
  Scope,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
} from '@nestjs/common';
import {
  ContextIdFactory,
  DiscoveryModule,
  DiscoveryService,
  ExternalContextCreator,
  ModuleRef,
  ModulesContainer,
} from '@nestjs/core';
import { FORBIDDEN_MESSAGE } from '@nestjs/core/guards/constants.js';
import { Ctx, Payload, type RequestContext } from '@nestjs/microservices';
import { Test, type TestingModule } from '@nestjs/testing';
import { EMPTY, EmptyError, type Observable } from 'rxjs';
import type { KafkaGroupContext } from '../context/kafka-group.context.js';
import { KafkaKey } from '../decorators/kafka-message-params.decorator.js';
import {
  applicationFilters,
  contextCreatorFor,
  type DiscoveredWrapper,
  GUARD_REJECTION_MESSAGE,
  hasEnhancers,
  importedInstances,
  isGuardRejection,
  isStaticTree,
  moduleKeyOf,
  moduleNameOf,
  pipesOnlyCall,
  registerRequest,
  requestContextOf,
  rpcParamsOf,
  rpcPipeline,
  scopedPipes,
} from './nest-internals.js';

/**
 * Pins every Nest shape nest-internals.ts assumes against the installed Nest, through Nest's public decorators and a
 * real (compiled, not listening) application: a Nest upgrade that changes one fails here.
 */

const FEATURE_TOKEN = Symbol('FEATURE_TOKEN');
const guardCalls: unknown[] = [];

@Injectable()
class Dependency {
  readonly name = 'dependency';
}

/** A guard with a dependency of its module: Nest can only build it inside that module. */
@Injectable()
class DenyGuard implements CanActivate {
  constructor(private readonly dependency: Dependency) {}
  canActivate(context: ExecutionContext): boolean {
    guardCalls.push([this.dependency.name, context.getType(), context.switchToRpc().getData()]);
    return false;
  }
}

@Injectable()
class PassThrough implements NestInterceptor {
  intercept(_: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

@Injectable()
class Identity implements PipeTransform {
  transform(value: unknown): unknown {
    return value;
  }
}

/** Records the metadata it is called with and marks the value, or refuses a value marked bad. */
@Injectable()
class Marking implements PipeTransform {
  static readonly seen: unknown[] = [];
  transform(value: { bad?: boolean }, metadata: unknown): unknown {
    Marking.seen.push(metadata);
    if (value.bad) throw new Error('refused by Marking');
    return { ...value, marked: true };
  }
}

class ItemDto {}

@Catch()
class HandleEverything implements ExceptionFilter {
  catch(error: Error, host: ArgumentsHost): string {
    return `${host.getType()} ${JSON.stringify(host.getArgs()[0])} ${error.message}`;
  }
}

@Controller()
class PinController {
  plain(@Payload() payload: unknown, @Ctx() context: unknown): unknown {
    return [payload, context];
  }

  undecorated(payload: unknown): unknown {
    return payload;
  }

  mixed(
    @Ctx() context: unknown,
    @KafkaKey() key: unknown,
    @Payload('id', ParseIntPipe) id: number,
    @Payload() payload: unknown,
  ): unknown {
    return [context, key, id, payload];
  }

  @UseGuards(DenyGuard)
  guarded(@Payload() payload: unknown): unknown {
    return payload;
  }

  @UseInterceptors(PassThrough)
  intercepted(): void {}

  @UseInterceptors(PassThrough)
  interceptedEmpty(): Observable<never> {
    return EMPTY;
  }

  @UsePipes(Identity)
  piped(): void {}

  @UsePipes(Marking)
  batch(@Payload(ParseIntPipe) items: unknown[]): unknown[] {
    return items;
  }

  @UsePipes(Identity)
  syncPiped(@Payload() payload: unknown, @Ctx() context: unknown): unknown {
    return [payload, context];
  }

  @UsePipes(Marking)
  markedBoth(@Payload() payload: unknown, @Ctx() context: unknown): unknown {
    return [payload, context];
  }

  @UseFilters(HandleEverything)
  filtered(): never {
    throw new Error('boom');
  }

  failing(): never {
    throw new Error('boom');
  }
}

@Module({ providers: [{ provide: FEATURE_TOKEN, useValue: { groupId: 'pin' } }], exports: [FEATURE_TOKEN] })
class PinFeatureModule {}

@Module({
  imports: [PinFeatureModule],
  controllers: [PinController],
  providers: [Dependency],
})
class PinModule {}

@Controller({ scope: Scope.REQUEST })
class ScopedController {
  handle(): void {}
}

@Module({ controllers: [ScopedController] })
class ScopedModule {}

describe('Nest internals this library relies on', () => {
  let app: TestingModule;
  let creator: ExternalContextCreator;
  let wrappers: DiscoveredWrapper[];
  let controller: PinController;

  const wrapperOf = (type: Function) => wrappers.find((wrapper) => wrapper.metatype === type)!;
  const context = { topic: 't', groupId: 'g' } as unknown as KafkaGroupContext;

  beforeAll(async () => {
    app = await Test.createTestingModule({ imports: [DiscoveryModule, PinModule, ScopedModule] }).compile();
    creator = app.get(ExternalContextCreator, { strict: false });
    wrappers = app.get(DiscoveryService).getControllers();
    controller = app.get(PinController);
  });

  afterAll(() => app.close());

  describe('route-arguments metadata', () => {
    test('reads @Payload(), @Ctx() and custom decorators with their index, data and pipes', () => {
      const params = rpcParamsOf(PinController, 'mixed').sort((a, b) => a.index - b.index);
      expect(params).toEqual([
        { kind: 'context', index: 0, data: undefined, hasPipes: false },
        { kind: 'other', index: 1, data: undefined, hasPipes: false },
        { kind: 'payload', index: 2, data: 'id', hasPipes: true },
        { kind: 'payload', index: 3, data: undefined, hasPipes: false },
      ]);
    });

    test('a method without parameter decorators has none', () => {
      expect(rpcParamsOf(PinController, 'undecorated')).toEqual([]);
    });
  });

  test("the request of a request-scoped provider is Nest's RequestContext: pattern, data and context, with getters", () => {
    const request = requestContextOf('orders', { n: 1 }, context) as RequestContext;
    expect([request.pattern, request.data, request.context]).toEqual(['orders', { n: 1 }, context]);
    expect([request.getPattern(), request.getData(), request.getContext()]).toEqual([
      'orders',
      { n: 1 },
      context,
    ]);
  });

  test('a request keeps the context id registered for it, where ContextIdFactory.getByRequest finds it again', () => {
    const request = requestContextOf('orders', { n: 1 }, context);
    const contextId = registerRequest(app.get(ModuleRef), request, false);
    expect(ContextIdFactory.getByRequest(request)).toBe(contextId);
  });

  describe('host module of a discovered controller', () => {
    test('is the module that declares it, keyed as in the modules container', () => {
      const host = wrapperOf(PinController).host!;
      expect(moduleNameOf(host)).toBe('PinModule');
      expect(app.get(ModulesContainer).get(moduleKeyOf(host))).toBe(host);
    });

    test('its imports provide the feature modules’ instances', () => {
      const host = wrapperOf(PinController).host!;
      expect(importedInstances(host, FEATURE_TOKEN)).toEqual([{ groupId: 'pin' }]);
      expect(importedInstances(wrapperOf(ScopedController).host!, FEATURE_TOKEN)).toEqual([]);
    });

    test('tells a controller built once from one built per request', () => {
      expect(isStaticTree(wrapperOf(PinController))).toBe(true);
      expect(isStaticTree(wrapperOf(ScopedController))).toBe(false);
    });
  });

  describe('ExternalContextCreator', () => {
    const moduleKey = () => moduleKeyOf(wrapperOf(PinController).host!);

    test('finds no module for a controller by itself (why the library passes the module key)', () => {
      expect(creator.getContextModuleKey(PinController)).toBe('');
      expect(contextCreatorFor(creator, moduleKey()).getContextModuleKey(PinController)).toBe(moduleKey());
    });

    test("a guard that refuses throws Nest's ForbiddenException with the message the library recognises", async () => {
      guardCalls.length = 0;
      const view = contextCreatorFor(creator, moduleKey());
      const error = await rpcPipeline(
        view,
        controller,
        controller.guarded,
        'guarded',
      )({ n: 1 }, context).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ForbiddenException);
      expect(GUARD_REJECTION_MESSAGE).toBe(FORBIDDEN_MESSAGE);
      expect(isGuardRejection(error)).toBe(true);
      expect(isGuardRejection(new Error('Forbidden'))).toBe(false);
      // Built in the controller's module (with its dependency), called with the RPC context and the payload.
      expect(guardCalls).toEqual([['dependency', 'rpc', { n: 1 }]]);
    });

    test('without the module key the guard is dropped', async () => {
      guardCalls.length = 0;
      await expect(
        rpcPipeline(creator, controller, controller.guarded, 'guarded')({ n: 1 }, context),
      ).resolves.toEqual({ n: 1 });
      expect(guardCalls).toEqual([]);
    });

    test('places @Payload() and @Ctx() arguments, with the payload field a decorator names', async () => {
      const view = contextCreatorFor(creator, moduleKey());
      await expect(rpcPipeline(view, controller, controller.plain, 'plain')('p', context)).resolves.toEqual([
        'p',
        context,
      ]);
      const mixed = rpcPipeline(
        view,
        controller,
        controller.mixed as (...args: unknown[]) => unknown,
        'mixed',
      );
      await expect(mixed({ id: '7' }, context)).resolves.toEqual([context, undefined, 7, { id: '7' }]);
    });

    test('an intercepted handler completing without a value: EmptyError from Nest alone, a success through the view', async () => {
      const call = (on: ExternalContextCreator) =>
        rpcPipeline(on, controller, controller.interceptedEmpty, 'interceptedEmpty')(undefined, context);
      await expect(call(creator)).rejects.toBeInstanceOf(EmptyError);
      await expect(call(contextCreatorFor(creator, moduleKey()))).resolves.toBeUndefined();
    });

    test('its private creators tell a handler with pipes, guards or interceptors from one without', () => {
      const view = contextCreatorFor(creator, moduleKey());
      const has = (method: keyof PinController) => hasEnhancers(view, controller, controller[method]);
      expect(has('plain')).toBe(false);
      expect(has('guarded')).toBe(true);
      expect(has('intercepted')).toBe(true);
      expect(has('piped')).toBe(true);
    });

    test('runs the method pipes (not the parameter pipes) on one value with the metatype given, as for @Payload()', async () => {
      const view = contextCreatorFor(creator, moduleKey());
      const run = scopedPipes(view, controller, controller.batch, ItemDto)!;
      expect(await run({ n: 1 })).toEqual({ n: 1, marked: true });
      expect(Marking.seen).toEqual([{ metatype: ItemDto, type: 'body', data: undefined, schema: undefined }]);
      await expect(run({ bad: true })).rejects.toThrow('refused by Marking');
      expect(scopedPipes(view, controller, controller.plain, ItemDto)).toBeUndefined();
    });

    describe('the pipes-only call', () => {
      const view = () => contextCreatorFor(creator, moduleKey());
      const method = (name: keyof PinController) => controller[name] as (...args: unknown[]) => unknown;
      const both = (name: keyof PinController) => ({
        nest: rpcPipeline(view(), controller, method(name), name),
        fast: pipesOnlyCall(view(), controller, method(name), name)!,
      });
      /** Settles a call that may throw, return a value, or return a promise, as [outcome, value]. */
      const settle = async (call: () => unknown) => {
        try {
          return ['ok', await call()];
        } catch (error) {
          return ['failed', (error as Error).message];
        }
      };

      test('is not offered to a handler with guards or interceptors', () => {
        expect(pipesOnlyCall(view(), controller, method('guarded'), 'guarded')).toBeUndefined();
        expect(pipesOnlyCall(view(), controller, method('intercepted'), 'intercepted')).toBeUndefined();
      });

      test("places custom decorators, payload fields and parameter pipes' results as Nest does", async () => {
        const { nest, fast } = both('mixed');
        expect(await fast({ id: '7' }, context)).toEqual(await nest({ id: '7' }, context));
        expect(await fast({ id: '7' }, context)).toEqual([context, undefined, 7, { id: '7' }]);
        expect(await settle(() => fast({ id: 'x' }, context))).toEqual(
          await settle(() => nest({ id: 'x' }, context)),
        );
      });

      test('gives every pipe the metadata Nest gives it, method pipes before parameter pipes', async () => {
        const { nest, fast } = both('batch');
        Marking.seen.length = 0;
        const viaNest = await settle(() => nest(['1'], context));
        const seenByNest = Marking.seen.splice(0);
        const viaFast = await settle(() => fast(['1'], context));
        expect(viaFast).toEqual(viaNest);
        expect(Marking.seen).toEqual(seenByNest);
        expect(seenByNest).toEqual([{ metatype: Array, type: 'body', data: undefined, schema: undefined }]);
      });

      test('a pipe that throws fails the call, and the other parameters still go through their pipes', async () => {
        const { nest, fast } = both('markedBoth');
        Marking.seen.length = 0;
        const viaNest = await settle(() => nest({ bad: true }, context));
        const seenByNest = Marking.seen.splice(0);
        const viaFast = await settle(() => fast({ bad: true }, context));
        expect(viaNest).toEqual(['failed', 'refused by Marking']);
        expect(viaFast).toEqual(viaNest);
        expect(Marking.seen).toEqual(seenByNest);
        // Nest's order: the parameters as their decorators were recorded (the last parameter first).
        expect(seenByNest.map((m) => (m as { type: string }).type)).toEqual(['custom', 'body']);
      });

      test('calls the method synchronously when every pipe returns synchronously', () => {
        const { fast } = both('syncPiped');
        expect(fast('p', context)).toEqual(['p', context]);
        const { fast: marked } = both('markedBoth');
        expect(marked({ n: 1 }, context)).toEqual([
          { n: 1, marked: true },
          { ...context, marked: true },
        ]);
      });

      test('without parameter decorators runs no pipe and passes (payload, context), as Nest does', async () => {
        const { nest, fast } = both('piped');
        expect(fast('p', context)).toBeUndefined();
        await expect(nest('p', context)).resolves.toBeUndefined();
      });
    });

    test("runs the application's own filters with an RPC host of (payload, context), and no fallback", async () => {
      const view = contextCreatorFor(creator, moduleKey());
      const filtered = applicationFilters(view, controller, controller.filtered);
      expect(await filtered(new Error('boom'), { n: 2 }, context)).toBe('rpc {"n":2} boom');
      const unfiltered = applicationFilters(view, controller, controller.failing);
      expect(unfiltered(new Error('boom'), { n: 2 }, context)).toBeUndefined();
    });
  });
});
