import type { Type } from '@nestjs/common';
import type { ContextId, ExternalContextCreator, ModuleRef } from '@nestjs/core';
import { isObservable, lastValueFrom } from 'rxjs';
import { KafkaBatchContext, type KafkaHandlerContext } from '../context/kafka-batch.context.js';
import { KafkaDecoratorMetadataError } from '../errors/kafka-decorator-metadata.error.js';
import { KafkaGuardRejectedError } from '../errors/kafka-guard-rejected.error.js';
import { KafkaHandlerFailedWithoutReasonError } from '../errors/kafka-handler-failed-without-reason.error.js';
import { httpExceptionReasons } from '../retry/failure-classifier.js';
import {
  applicationFilters,
  contextCreatorFor,
  GUARD_REJECTION_MESSAGE,
  hasEnhancers,
  isGuardRejection,
  pipesOnlyCall,
  registerRequest,
  requestContextOf,
  rpcParamsOf,
  rpcPipeline,
  scopedPipes,
} from './nest-internals.js';

/**
 * Runs one message through a handler's Nest pipeline. Returns undefined when the handler returned synchronously
 * and succeeded; otherwise a promise that resolves with the failure, or with undefined on success. Never throws
 * nor rejects.
 */
export type HandlerInvoker = (data: unknown, context: KafkaHandlerContext) => Promise<unknown> | undefined;

/** A controller method to build a pipeline for. */
export interface ControllerMethod {
  /** The controller instance (for a request-scoped controller, the one Nest made at start-up). */
  instance: object;
  /** Key of the module that hosts the controller, where its guards, pipes and interceptors are instantiated. */
  moduleKey: string;
  methodName: string;
  /** Nest builds a request-scoped (or transient-dependent) controller per message. */
  isStatic: boolean;
  /** Its request-scoped tree is durable: Nest builds it per sub-tree of the application's ContextIdStrategy. */
  isDurable: boolean;
}

/**
 * Builds each handler's pipeline with Nest's own ExternalContextCreator: pipes, guards and interceptors as in
 * any Nest handler, exception filters run for their side effects. Errors reach the transport as thrown, without
 * an interceptor on the hot path (an interceptor puts every message on rxjs's observable path, about half the
 * handler's cost), and a filter that swallows an error cannot turn a failure into a success. A handler with
 * nothing in its pipeline is called directly, one with pipes only (a global ValidationPipe, say) runs them
 * without Nest's per-call async layers; guards or interceptors take Nest's own pipeline.
 */
export class HandlerPipelineFactory {
  constructor(
    private readonly contextCreator: ExternalContextCreator,
    private readonly moduleRef: ModuleRef,
  ) {}

  create(method: ControllerMethod): HandlerInvoker {
    const creator = contextCreatorFor(this.contextCreator, method.moduleKey);
    if (method.isStatic) return this.invoker(creator, method.instance, method.methodName);
    const type = method.instance.constructor;
    return async (data, context) => {
      // Request-scoped controllers are resolved per message, as Nest does for its own transports. A controller
      // (or a dependency) that cannot be built fails this message: the invoker never rejects.
      let instance: object;
      let contextId: ContextId;
      try {
        contextId = registerRequest(
          this.moduleRef,
          requestContextOf(context.topic, data, context),
          method.isDurable,
        );
        instance = await this.moduleRef.resolve<object>(type, contextId, { strict: false });
      } catch (error) {
        return error ?? new Error(`${type.name} could not be resolved`);
      }
      return this.invoker(creator, instance, method.methodName, contextId)(data, context);
    };
  }

  /**
   * Per-element validation of a batch handler with `items`: its global, controller and method pipes, run on one
   * element with `items` as the metatype, so the application's ValidationPipe validates (and transforms) each element
   * as it would a single payload. The `@Payload()` parameter's own pipes are left to the call: they are written for
   * the array (ParseArrayPipe). Undefined when no such pipe exists.
   */
  itemValidator(method: ControllerMethod, items: Type): ((value: unknown) => Promise<unknown>) | undefined {
    const creator = contextCreatorFor(this.contextCreator, method.moduleKey);
    const callback = (method.instance as Record<string, Function>)[method.methodName];
    return scopedPipes(creator, method.instance, callback, items);
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
      pipesOnlyCall(creator, instance, callback, methodName, contextId) ??
      rpcPipeline(creator, instance, callback, methodName, contextId);
    const runFilters = this.filtersRunner(creator, instance, callback, contextId);
    const failed = async (data: unknown, context: KafkaHandlerContext, error: unknown) => {
      const swallowed = await runFilters(data, context, error);
      const failure = classify(error, context);
      // A guard's refusal that the application's filter swallows is its decision to skip the message.
      return swallowed && failure instanceof KafkaGuardRejectedError ? undefined : failure;
    };
    return (data, context) => {
      let result: unknown;
      try {
        result = pipeline(data, context);
      } catch (error) {
        return failed(data, context, error);
      }
      if (result === undefined) return undefined;
      if (isObservable(result)) result = lastValueFrom(result, { defaultValue: undefined });
      if (typeof (result as PromiseLike<unknown>).then !== 'function') return undefined;
      const onError = (error: unknown) => failed(data, context, error);
      // A promise may resolve with the handler's Observable (an async pipe ran first, or an async method returned
      // one): it is the handler's work, subscribed as Nest's own transports do.
      return Promise.resolve(result).then(
        (value) =>
          isObservable(value)
            ? lastValueFrom(value, { defaultValue: undefined }).then(succeeded, onError)
            : undefined,
        onError,
      );
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
    const filters = applicationFilters(creator, instance, callback, contextId);
    return async (data: unknown, context: KafkaHandlerContext, error: unknown): Promise<boolean> => {
      try {
        // Nothing returned: no filter of the application's caught this error (or it returned nothing, which Nest
        // reads the same way).
        const result = await filters(error, data, context);
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
): ((data: unknown, context: KafkaHandlerContext) => unknown) | undefined {
  if (hasEnhancers(creator, instance, callback, contextId) !== false) return undefined;
  const params = rpcParamsOf(instance.constructor, methodName);
  // Without parameter decorators Nest passes (payload, context) as they are.
  const slots: ('payload' | 'context')[] = params.length === 0 ? ['payload', 'context'] : [];
  for (const { kind, index, data, hasPipes } of params) {
    if (kind === 'other' || data !== undefined || hasPipes) return undefined;
    slots[index] = kind;
  }
  if (slots.length === 2 && slots[0] === 'payload' && slots[1] === 'context') {
    return (data, context) => callback.call(instance, data, context);
  }
  return (data, context) =>
    callback.apply(
      instance,
      Array.from(slots, (kind) => (kind === 'payload' ? data : kind === 'context' ? context : null)),
    );
}

const succeeded = (): undefined => undefined;

/**
 * Whether the method's `@Payload()` parameter is typed `Buffer`: then the handler gets the raw bytes. The type comes
 * from the decorator metadata, as the pipes' metatypes do: a handler with a `@Payload()` parameter and no metadata
 * (a compiler that emits none) is a KafkaDecoratorMetadataError naming `handlerName`, not a silent guess.
 */
export function payloadIsBuffer(prototype: object, methodName: string, handlerName: string): boolean {
  const payload = rpcParamsOf(prototype.constructor, methodName).find((param) => param.kind === 'payload');
  if (payload === undefined) return false;
  const types = Reflect.getMetadata('design:paramtypes', prototype, methodName) as unknown[] | undefined;
  if (types === undefined) throw new KafkaDecoratorMetadataError(handlerName);
  return types[payload.index] === Buffer;
}

function classify(error: unknown, context: KafkaHandlerContext): unknown {
  // Undefined is what the transport reads as success: a failure without a reason must not commit the message.
  if (error === undefined) {
    const offsets =
      context instanceof KafkaBatchContext
        ? `offsets ${context.firstOffset}-${context.lastOffset}`
        : `offset ${context.offset}`;
    return new KafkaHandlerFailedWithoutReasonError(
      context.topic,
      context.partition,
      offsets,
      context.groupId,
    );
  }
  if (isGuardRejection(error)) {
    return new KafkaGuardRejectedError(context.topic, context.groupId, GUARD_REJECTION_MESSAGE);
  }
  // The log line and the dead-letter header then say what was wrong with the payload, not just "Bad Request".
  const reasons = httpExceptionReasons(error);
  if (reasons !== undefined) (error as Error).message = reasons;
  return error;
}
