import type { Type } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { type ContextId, ContextIdFactory, ExternalContextCreator, type ModuleRef } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { RpcParamtype } from '@nestjs/microservices/enums/rpc-paramtype.enum.js';
import { isObservable, lastValueFrom } from 'rxjs';
import type { KafkaGroupContext } from '../context/kafka-group.context.js';
import { KafkaGuardRejectedError } from '../errors/kafka-guard-rejected.error.js';
import { httpExceptionReasons } from '../retry/failure-classifier.js';
import { itemValidator } from './batch-items.js';

/** Runs one message through a handler's Nest pipeline; resolves with the failure, or undefined on success. */
export type HandlerInvoker = (data: unknown, context: KafkaGroupContext) => Promise<unknown>;

/** The message Nest's guards consumer throws with when a guard refuses. */
const FORBIDDEN_MESSAGE = 'Forbidden resource';

/** Maps `@Payload()` and `@Ctx()` onto the two arguments every handler is called with. */
const rpcParamsFactory = {
  exchangeKeyForValue(type: number, data: unknown, args: [unknown, KafkaGroupContext]): unknown {
    if (type === RpcParamtype.PAYLOAD) {
      return typeof data === 'string' ? (args[0] as Record<string, unknown> | null)?.[data] : args[0];
    }
    if (type === RpcParamtype.CONTEXT) return args[1];
    return null;
  },
};

interface ControllerMethod {
  /** The controller instance (for a request-scoped controller, the one Nest made at start-up). */
  instance: object;
  /** Key of the module that hosts the controller, where its guards, pipes and interceptors are instantiated. */
  moduleKey: string;
  methodName: string;
  /** Nest builds a request-scoped (or transient-dependent) controller per message. */
  isStatic: boolean;
}

/**
 * Builds each handler's pipeline with Nest's own ExternalContextCreator: pipes, guards and interceptors as in
 * any Nest handler, exception filters run for their side effects. Errors reach the transport as thrown, without
 * an interceptor on the hot path (an interceptor puts every message on rxjs's observable path, about half the
 * handler's cost), and a filter that swallows an error cannot turn a failure into a success.
 */
export class HandlerPipelineFactory {
  constructor(
    private readonly contextCreator: ExternalContextCreator,
    private readonly moduleRef: ModuleRef,
  ) {}

  create(method: ControllerMethod): HandlerInvoker {
    const creator = this.creatorFor(method.moduleKey);
    if (method.isStatic) return this.invoker(creator, method.instance, method.methodName);
    const type = method.instance.constructor;
    return async (data, context) => {
      // Request-scoped controllers are resolved per message, as Nest does for its own transports. A controller
      // (or a dependency) that cannot be built fails this message: the invoker never rejects.
      let instance: object;
      const contextId: ContextId = ContextIdFactory.create();
      try {
        this.moduleRef.registerRequestByContextId({ data, context }, contextId);
        instance = await this.moduleRef.resolve<object>(type, contextId, { strict: false });
      } catch (error) {
        return error ?? new Error(`${type.name} could not be resolved`);
      }
      return this.invoker(creator, instance, method.methodName, contextId)(data, context);
    };
  }

  /** The per-element pipes of a batch handler declared with `items` (see batch-items.ts). */
  itemValidator(method: ControllerMethod, items: Type): ((value: unknown) => Promise<unknown>) | undefined {
    return itemValidator(this.creatorFor(method.moduleKey), method.instance, method.methodName, items);
  }

  /**
   * ExternalContextCreator looks up the host module among providers only; a controller is not one, so its
   * enhancers would be looked up in no module and dropped. This view of it answers with the controller's module.
   */
  private creatorFor(moduleKey: string): ExternalContextCreator {
    return Object.create(this.contextCreator, {
      getContextModuleKey: { value: () => moduleKey },
    }) as ExternalContextCreator;
  }

  private invoker(
    creator: ExternalContextCreator,
    instance: object,
    methodName: string,
    contextId?: ContextId,
  ): HandlerInvoker {
    const callback = (instance as Record<string, (...args: unknown[]) => unknown>)[methodName];
    const pipeline =
      directCall(creator, instance, callback, methodName, contextId) ??
      creator.create(
        instance,
        callback,
        methodName,
        ROUTE_ARGS_METADATA,
        rpcParamsFactory,
        contextId,
        undefined,
        { guards: true, interceptors: true, filters: false },
        'rpc',
      );
    const runFilters = this.filtersRunner(creator, instance, callback, contextId);
    return async (data, context) => {
      try {
        await pipeline(data, context);
        return undefined;
      } catch (error) {
        const swallowed = await runFilters(data, context, error);
        const failure = classify(error, context);
        // A guard's refusal that the application's filter swallows is its decision to skip the message.
        return swallowed && failure instanceof KafkaGuardRejectedError ? undefined : failure;
      }
    };
  }

  /**
   * The handler's exception filters (method, controller, global), run on a failure for what they do (log, alert,
   * count). Resolves true when a filter swallowed the error (returned without rethrowing); the message failed
   * all the same, except for a guard's refusal (see the invoker). Only the application's own filters run: Nest's fallback would
   * log every failed attempt as an ERROR with its stack, which the consumer member already reports once per
   * attempt (and with the stack once, when the message is dead-lettered).
   */
  private filtersRunner(
    creator: ExternalContextCreator,
    instance: object,
    callback: Function,
    contextId?: ContextId,
  ) {
    const { filtersContextCreator } = creator as unknown as { filtersContextCreator: FiltersCreator };
    const moduleKey = creator.getContextModuleKey(instance.constructor);
    const handler = filtersContextCreator.create(instance, callback, moduleKey, contextId);
    return async (data: unknown, context: KafkaGroupContext, error: unknown): Promise<boolean> => {
      const host = new ExecutionContextHost([data, context], instance.constructor as Type, callback);
      host.setType('rpc');
      try {
        // Nothing returned: no filter of the application's caught this error (or it returned nothing, which Nest
        // reads the same way).
        const result = await handler.invokeCustomFilters(error, host);
        if (result === undefined || result === null) return false;
        if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
        return true;
      } catch {
        // A filter that rethrows (the usual RPC filter) changes nothing: the message failed either way.
        return false;
      }
    };
  }
}

/** The part of Nest's exception filter context used to run an application's own filters. */
interface FiltersCreator {
  create(
    instance: object,
    callback: Function,
    moduleKey: string,
    contextId?: ContextId,
  ): { invokeCustomFilters(exception: unknown, host: ExecutionContextHost): unknown };
}

/** The parts of ExternalContextCreator read to tell whether a handler's pipeline has anything to run. */
interface EnhancerCreators {
  pipesContextCreator?: EnhancerCreator;
  guardsContextCreator?: EnhancerCreator;
  interceptorsContextCreator?: EnhancerCreator;
}
interface EnhancerCreator {
  create(instance: object, callback: Function, moduleKey: string, contextId?: ContextId): unknown[];
}

/**
 * When a handler has no pipes, guards or interceptors (global ones included) and only `@Payload()` / `@Ctx()`
 * parameters, Nest's pipeline would only place the two arguments, through several promise layers per message:
 * call the method directly then. Anything else, or a Nest whose context creator looks different, takes the full
 * pipeline. Filters run on failure either way.
 */
function directCall(
  creator: ExternalContextCreator,
  instance: object,
  callback: (...args: unknown[]) => unknown,
  methodName: string,
  contextId?: ContextId,
): ((data: unknown, context: KafkaGroupContext) => Promise<void>) | undefined {
  const { pipesContextCreator, guardsContextCreator, interceptorsContextCreator } =
    creator as unknown as EnhancerCreators;
  if (!pipesContextCreator || !guardsContextCreator || !interceptorsContextCreator) return undefined;
  const moduleKey = creator.getContextModuleKey(instance.constructor);
  for (const enhancers of [pipesContextCreator, guardsContextCreator, interceptorsContextCreator]) {
    if (enhancers.create(instance, callback, moduleKey, contextId).length > 0) return undefined;
  }
  const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, instance.constructor, methodName) ?? {}) as Record<
    string,
    { index: number; data?: unknown; pipes?: unknown[] }
  >;
  const keys = Object.keys(params);
  // Without parameter decorators Nest passes (payload, context) as they are.
  const slots: number[] = keys.length === 0 ? [RpcParamtype.PAYLOAD, RpcParamtype.CONTEXT] : [];
  for (const key of keys) {
    const type = Number(key.split(':')[0]);
    const { index, data, pipes } = params[key];
    if (
      (type !== RpcParamtype.PAYLOAD && type !== RpcParamtype.CONTEXT) ||
      data !== undefined ||
      pipes?.length
    ) {
      return undefined;
    }
    slots[index] = type;
  }
  return async (data, context) => {
    const args = Array.from(slots, (type) =>
      type === RpcParamtype.PAYLOAD ? data : type === RpcParamtype.CONTEXT ? context : null,
    );
    const result = await callback.apply(instance, args);
    if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
  };
}

/** Whether the method's `@Payload()` parameter is typed `Buffer`: then the handler gets the raw bytes. */
export function payloadIsBuffer(prototype: object, methodName: string): boolean {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, prototype.constructor, methodName) ?? {}) as Record<
    string,
    unknown
  >;
  const payloadKey = Object.keys(args).find((key) => key.startsWith(`${RpcParamtype.PAYLOAD}:`));
  if (payloadKey === undefined) return false;
  const types = Reflect.getMetadata('design:paramtypes', prototype, methodName) as unknown[] | undefined;
  return types?.[Number(payloadKey.split(':')[1])] === Buffer;
}

function classify(error: unknown, context: KafkaGroupContext): unknown {
  if ((error as { message?: unknown } | null)?.message === FORBIDDEN_MESSAGE) {
    return new KafkaGuardRejectedError(context.topic, context.groupId, FORBIDDEN_MESSAGE);
  }
  // The log line and the dead-letter header then say what was wrong with the payload, not just "Bad Request".
  const reasons = httpExceptionReasons(error);
  if (reasons !== undefined) (error as Error).message = reasons;
  return error;
}
