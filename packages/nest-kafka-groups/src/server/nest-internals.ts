/**
 * Every shape of NestJS this library relies on that is not Nest's public API, in one file: deep imports, the
 * route-arguments metadata format, ExternalContextCreator's private enhancer creators, the guard's refusal
 * message, the fields of the module that hosts a controller, and how a request's context id is kept. `nest-internals.spec.ts` pins each against the
 * installed Nest, so an upgrade that changes one fails that spec instead of silently changing behaviour.
 */
import type { ArgumentMetadata, PipeTransform, Type } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import {
  type ContextId,
  ContextIdFactory,
  type DiscoveryService,
  type ExternalContextCreator,
  type ModuleRef,
} from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { REQUEST_CONTEXT_ID } from '@nestjs/core/internal';
import { RequestContextHost } from '@nestjs/microservices/context/request-context-host.js';
import { RpcParamtype } from '@nestjs/microservices/enums/rpc-paramtype.enum.js';
import { isObservable, lastValueFrom } from 'rxjs';
import type { KafkaHandlerContext } from '../context/kafka-batch.context.js';

/** What DiscoveryService hands out for each controller or provider (Nest's InstanceWrapper). */
export type DiscoveredWrapper = ReturnType<DiscoveryService['getControllers']>[number];

/** The module that hosts a wrapper (Nest's `Module`, not exported from `@nestjs/core`'s entry). */
export type HostModule = NonNullable<DiscoveredWrapper['host']>;

/** The message Nest's ExternalContextCreator throws (in a ForbiddenException) when a guard refuses. */
export const GUARD_REJECTION_MESSAGE = 'Forbidden resource';

/** Whether an error is Nest's refusal by a guard of the handler's pipeline. */
export function isGuardRejection(error: unknown): boolean {
  return (error as { message?: unknown } | null)?.message === GUARD_REJECTION_MESSAGE;
}

/** Key of the host module in Nest's ModulesContainer, the key enhancers are looked up under. */
export function moduleKeyOf(host: HostModule): string {
  return host.token;
}

/** The module's class name, for messages. */
export function moduleNameOf(host: HostModule): string {
  return host.metatype?.name ?? String(host.name);
}

/** The instances the modules imported by `host` provide under `token` (how a module's forFeature is found). */
export function importedInstances(host: HostModule, token: unknown): unknown[] {
  return [...host.imports]
    .map((imported) => imported.providers.get(token as string)?.instance)
    .filter((instance) => instance !== undefined);
}

/** Whether Nest builds the wrapper's instance once (false: per request, so per message here). */
export function isStaticTree(wrapper: DiscoveredWrapper): boolean {
  return wrapper.isDependencyTreeStatic();
}

/**
 * Whether the wrapper's request-scoped tree is durable: built once per sub-tree a `ContextIdStrategy` picks (a
 * tenant, say) rather than per request, with the strategy's payload as its REQUEST.
 */
export function isDurableTree(wrapper: DiscoveredWrapper): boolean {
  return wrapper.isDependencyTreeDurable();
}

/** One parameter decorator of a handler method, as Nest records it. */
export interface RpcParam {
  /** `@Payload()`, `@Ctx()`, or anything else (a custom decorator such as `@KafkaKey()`). */
  kind: 'payload' | 'context' | 'other';
  index: number;
  /** The decorator's argument (`@Payload('field')`). */
  data: unknown;
  /** Whether pipes were given to the decorator (`@Payload(new ParseIntPipe())`). */
  hasPipes: boolean;
}

/**
 * The method's parameter decorators. Nest stores them under ROUTE_ARGS_METADATA on the class, keyed
 * `"<paramtype>:<index>"` for its own decorators and `"<id>__customRouteArgs__:<index>"` for custom ones.
 */
export function rpcParamsOf(controller: Function, methodName: string): RpcParam[] {
  const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, methodName) ?? {}) as Record<
    string,
    { index: number; data?: unknown; pipes?: unknown[] }
  >;
  return Object.entries(params).map(([key, { index, data, pipes }]) => {
    const type = Number(key.split(':')[0]);
    const kind =
      type === RpcParamtype.PAYLOAD ? 'payload' : type === RpcParamtype.CONTEXT ? 'context' : 'other';
    return { kind, index, data, hasPipes: (pipes?.length ?? 0) > 0 };
  });
}

/** Maps `@Payload()` and `@Ctx()` onto the two arguments every handler is called with. */
const rpcParamsFactory = {
  exchangeKeyForValue(type: number, data: unknown, args: [unknown, KafkaHandlerContext]): unknown {
    if (type === RpcParamtype.PAYLOAD) {
      return typeof data === 'string' ? (args[0] as Record<string, unknown> | null)?.[data] : args[0];
    }
    if (type === RpcParamtype.CONTEXT) return args[1];
    return null;
  },
};

/**
 * What a request-scoped provider receives for `@Inject(CONTEXT)` (or `REQUEST`) on Nest's own transports: a
 * `RequestContext` of the message's pattern (here its topic), payload and context, with its getters.
 */
export function requestContextOf(topic: string, data: unknown, context: KafkaHandlerContext): object {
  return RequestContextHost.create(topic, data, context);
}

/**
 * A message's context id and REQUEST, as Nest's own transports make them (`ListenersController.getContextId`): the
 * application's `ContextIdStrategy` (`ContextIdFactory.apply`) attaches the id to a durable sub-tree (a tenant's,
 * say) and gives a payload, which is the REQUEST of a durable tree and is merged into the request otherwise. The id
 * is kept on the request, where `ContextIdFactory.getByRequest` finds it again (a guard resolving a provider).
 */
export function registerRequest(moduleRef: ModuleRef, request: object, isTreeDurable: boolean): ContextId {
  const contextId = ContextIdFactory.getByRequest(request);
  Object.defineProperty(request, REQUEST_CONTEXT_ID, { value: contextId, enumerable: false });
  moduleRef.registerRequestByContextId(
    isTreeDurable ? contextId.payload : Object.assign(request, contextId.payload),
    contextId,
  );
  return contextId;
}

/** A handler's pipeline: (payload, context) through its guards, interceptors and pipes, then the method. */
export type RpcPipeline = (data: unknown, context: KafkaHandlerContext) => Promise<unknown>;

/**
 * Nest's own RPC pipeline for a handler (guards, interceptors, pipes; exception filters left to the caller), with
 * parameters placed as `@Payload()` / `@Ctx()` say.
 */
export function rpcPipeline(
  creator: ExternalContextCreator,
  instance: object,
  callback: (...args: unknown[]) => unknown,
  methodName: string,
  contextId?: ContextId,
): RpcPipeline {
  return creator.create(
    instance,
    callback,
    methodName,
    ROUTE_ARGS_METADATA,
    rpcParamsFactory,
    contextId,
    undefined,
    { guards: true, interceptors: true, filters: false },
    'rpc',
  ) as RpcPipeline;
}

/**
 * ExternalContextCreator looks up the host module among providers only; a controller is not one, so its
 * enhancers would be looked up in no module and dropped. This view of it answers with the controller's module, and
 * reads an Observable that completes without a value as a success.
 */
export function contextCreatorFor(
  creator: ExternalContextCreator,
  moduleKey: string,
): ExternalContextCreator {
  return Object.create(creator, {
    getContextModuleKey: { value: () => moduleKey },
    // Nest's own reads the pipeline's Observable with lastValueFrom and no default, which fails with EmptyError
    // when a handler or interceptor completes without a value (EMPTY, ignoreElements); Nest's RPC transports take
    // that as done, as the library does for a handler without interceptors.
    transformToResult: {
      value: (result: unknown) =>
        isObservable(result) ? lastValueFrom(result, { defaultValue: undefined }) : result,
    },
  }) as ExternalContextCreator;
}

/** ExternalContextCreator's private creators of a handler's pipes, guards and interceptors. */
interface EnhancerCreators {
  pipesContextCreator?: EnhancerCreator;
  guardsContextCreator?: EnhancerCreator;
  interceptorsContextCreator?: EnhancerCreator;
}
interface EnhancerCreator<Enhancer = unknown> {
  create(
    instance: object,
    callback: Function,
    moduleKey: string,
    contextId?: ContextId,
    inquirerId?: string,
  ): Enhancer[];
}

/**
 * Whether the handler has pipes, guards or interceptors (global ones included); undefined when the context
 * creator does not look as expected, so the caller takes Nest's full pipeline.
 */
export function hasEnhancers(
  creator: ExternalContextCreator,
  instance: object,
  callback: Function,
  contextId?: ContextId,
): boolean | undefined {
  const { pipesContextCreator, guardsContextCreator, interceptorsContextCreator } =
    creator as unknown as EnhancerCreators;
  if (!pipesContextCreator || !guardsContextCreator || !interceptorsContextCreator) return undefined;
  const moduleKey = creator.getContextModuleKey(instance.constructor);
  return [pipesContextCreator, guardsContextCreator, interceptorsContextCreator].some(
    (enhancers) => enhancers.create(instance, callback, moduleKey, contextId).length > 0,
  );
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

/**
 * Runs the application's own exception filters of a handler (method, controller, global) on an error and returns
 * what they returned: undefined or null when none caught it. Nest's fallback filter is not among them.
 */
export function applicationFilters(
  creator: ExternalContextCreator,
  instance: object,
  callback: Function,
  contextId?: ContextId,
): (error: unknown, data: unknown, context: KafkaHandlerContext) => unknown {
  const { filtersContextCreator } = creator as unknown as { filtersContextCreator: FiltersCreator };
  const moduleKey = creator.getContextModuleKey(instance.constructor);
  const handler = filtersContextCreator.create(instance, callback, moduleKey, contextId);
  return (error, data, context) => {
    const host = new ExecutionContextHost([data, context], instance.constructor as Type, callback);
    host.setType('rpc');
    return handler.invokeCustomFilters(error, host);
  };
}

/** ExternalContextCreator's private pipe creator and consumer. */
interface PipeCreators {
  pipesContextCreator?: EnhancerCreator<PipeTransform>;
  pipesConsumer?: {
    apply(
      value: unknown,
      metadata: { metatype: unknown; type: unknown; data: unknown },
      pipes: PipeTransform[],
    ): Promise<unknown>;
    paramsTokenFactory?: { exchangeEnumForString(type: number): string };
  };
}

/** What ExternalContextCreator resolves once per handler (its private `getMetadata` and context utilities). */
interface HandlerMetadataSource {
  modulesContainer?: Map<string, { entryProviders?: { token: unknown; instance: unknown; id: string }[] }>;
  getMetadata?(
    instance: object,
    methodName: string,
    metadataKey: string,
    paramsFactory: typeof rpcParamsFactory,
    contextType: string,
  ): {
    argsLength: number;
    paramtypes?: unknown[];
    getParamsMetadata(moduleKey: string, contextId?: ContextId, inquirerId?: string): NestParam[] | null;
  };
  contextUtils?: {
    mergeParamsMetatypes(params: NestParam[], paramtypes?: unknown[]): NestParam[];
    warnOnMissingParamtypes(
      instance: object,
      methodName: string,
      paramtypes: unknown[] | undefined,
      pipes: PipeTransform[],
      params: NestParam[],
    ): void;
  };
}

/** A parameter as ExternalContextCreator resolves it: where it goes, how its value is read, its own pipes. */
interface NestParam {
  index: number;
  type: number | string;
  data: unknown;
  schema?: unknown;
  metatype?: unknown;
  pipes: PipeTransform[];
  extractValue(...args: unknown[]): unknown;
}

/** One parameter, resolved for the pipes-only call: every pipe it goes through and the metadata they are given. */
interface PipedParam {
  index: number;
  extractValue(data: unknown, context: unknown): unknown;
  pipes: PipeTransform[];
  metatype: unknown;
  type: string;
  data: unknown;
  schema: unknown;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null &&
  (typeof value === 'object' || typeof value === 'function') &&
  typeof (value as PromiseLike<unknown>).then === 'function';

/**
 * A handler with pipes but neither guards nor interceptors, called as Nest's ExternalContextCreator would call it
 * (the same pipes in the same order on the same parameters, with the same metadata), with everything Nest resolves
 * per call resolved once here. Nest awaits every pipe and parameter through several async layers per message; this
 * waits only where a pipe returns a promise, and calls the method synchronously when none does. Returns the
 * method's result (or a promise of it), or throws what a pipe or the method threw. Undefined when the handler has
 * guards or interceptors, or the context creator does not look as expected: the caller then takes Nest's pipeline.
 */
export function pipesOnlyCall(
  creator: ExternalContextCreator,
  instance: object,
  callback: (...args: unknown[]) => unknown,
  methodName: string,
  contextId?: ContextId,
): ((data: unknown, context: KafkaHandlerContext) => unknown) | undefined {
  const { pipesContextCreator, pipesConsumer, guardsContextCreator, interceptorsContextCreator } =
    creator as unknown as PipeCreators & EnhancerCreators;
  const { modulesContainer, contextUtils } = creator as unknown as HandlerMetadataSource;
  const getMetadata = (creator as unknown as HandlerMetadataSource).getMetadata?.bind(creator);
  const tokenOf = pipesConsumer?.paramsTokenFactory;
  if (
    !pipesContextCreator ||
    !guardsContextCreator ||
    !interceptorsContextCreator ||
    !modulesContainer ||
    !contextUtils ||
    !getMetadata ||
    !tokenOf
  ) {
    return undefined;
  }
  const classRef = instance.constructor;
  const moduleKey = creator.getContextModuleKey(classRef);
  // As ExternalContextCreator.create finds the inquirer of transient enhancers.
  const inquirerId = modulesContainer
    .get(moduleKey)
    ?.entryProviders?.find((item) => item.token === classRef || item.instance === instance)?.id;
  if (
    guardsContextCreator.create(instance, callback, moduleKey, contextId, inquirerId).length > 0 ||
    interceptorsContextCreator.create(instance, callback, moduleKey, contextId, inquirerId).length > 0
  ) {
    return undefined;
  }
  const { argsLength, paramtypes, getParamsMetadata } = getMetadata(
    instance,
    methodName,
    ROUTE_ARGS_METADATA,
    rpcParamsFactory,
    'rpc',
  );
  const pipes = pipesContextCreator.create(instance, callback, moduleKey, contextId, inquirerId);
  const nestParams = getParamsMetadata(moduleKey, contextId, inquirerId);
  const merged = nestParams ? contextUtils.mergeParamsMetatypes(nestParams, paramtypes) : [];
  contextUtils.warnOnMissingParamtypes(instance, methodName, paramtypes, pipes, merged);
  // Without parameter decorators Nest runs no pipe and passes (payload, context) as they are.
  if (merged.length === 0) return (data, context) => callback.call(instance, data, context);
  const params: PipedParam[] = merged.map((param) => ({
    index: param.index,
    extractValue: param.extractValue,
    pipes: pipes.concat(param.pipes),
    metatype: param.metatype,
    // PipesConsumer.apply's conversion of the parameter type for the pipes.
    type: tokenOf.exchangeEnumForString(param.type as number),
    data: param.data,
    schema: param.schema,
  }));
  return (data, context) => {
    const args = new Array<unknown>(argsLength).fill(undefined);
    let pending: Promise<unknown>[] | undefined;
    let failure: { error: unknown } | undefined;
    for (const param of params) {
      // As in Nest, a parameter whose pipe throws does not keep the others' pipes from running.
      try {
        const value = applyPipes(param, param.extractValue(data, context));
        if (isThenable(value)) {
          (pending ??= []).push(Promise.resolve(value).then((resolved) => (args[param.index] = resolved)));
        } else {
          args[param.index] = value;
        }
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) {
      // The call has failed: what the other parameters' pipes still do is not awaited, nor reported.
      if (pending) for (const promise of pending) promise.catch(ignore);
      throw failure.error;
    }
    if (pending === undefined) return callback.apply(instance, args);
    return (pending.length === 1 ? pending[0] : Promise.all(pending)).then(() =>
      callback.apply(instance, args),
    );
  };
}

const ignore = (): void => undefined;

/** A parameter's pipes in order (PipesConsumer.applyPipes), waiting only for the ones that return a promise. */
function applyPipes(param: PipedParam, value: unknown, from = 0): unknown {
  if (from === 0 && isThenable(value)) return Promise.resolve(value).then((v) => applyPipes(param, v));
  let result = value;
  for (let i = from; i < param.pipes.length; i++) {
    const { metatype, type, data, schema } = param;
    result = param.pipes[i].transform(result, { metatype, type, data, schema } as ArgumentMetadata);
    if (isThenable(result)) {
      const next = i + 1;
      return next === param.pipes.length
        ? result
        : Promise.resolve(result).then((v) => applyPipes(param, v, next));
    }
  }
  return result;
}

/**
 * The handler's global, controller and method pipes, as one function that runs them on a value with `metatype` as
 * the type of a `@Payload()` parameter (Nest's PipesConsumer); it resolves with the pipes' result or rejects with
 * what a pipe threw. Undefined when there are no such pipes, or the context creator does not look as expected.
 */
export function scopedPipes(
  creator: ExternalContextCreator,
  instance: object,
  callback: Function,
  metatype: Type,
): ((value: unknown) => Promise<unknown>) | undefined {
  const { pipesContextCreator, pipesConsumer } = creator as unknown as PipeCreators;
  if (!pipesContextCreator || !pipesConsumer) return undefined;
  const pipes = pipesContextCreator.create(
    instance,
    callback,
    creator.getContextModuleKey(instance.constructor),
  );
  if (pipes.length === 0) return undefined;
  const metadata = { metatype, type: RpcParamtype.PAYLOAD, data: undefined };
  return (value) => pipesConsumer.apply(value, metadata, pipes);
}
