import type { PipeTransform, Type } from '@nestjs/common';
import type { ExternalContextCreator } from '@nestjs/core';
import { RpcParamtype } from '@nestjs/microservices/enums/rpc-paramtype.enum.js';

/** ExternalContextCreator's private pipe helpers, as the installed Nest has them. */
interface PipeCreators {
  pipesContextCreator?: {
    create(instance: object, callback: Function, moduleKey: string): PipeTransform[];
  };
  pipesConsumer?: {
    apply(
      value: unknown,
      metadata: { metatype: unknown; type: unknown; data: unknown },
      pipes: PipeTransform[],
    ): Promise<unknown>;
  };
}

/**
 * Per-element validation of a batch handler with `items`: the handler's global, controller and method pipes, applied
 * to one element with `items` as the metatype, so the application's ValidationPipe validates (and transforms) each
 * element as it would a single payload. The `@Payload()` parameter's own pipes are left to the call (they are
 * written for the array: ParseArrayPipe). Resolves with the element as the handler gets it, rejects with what a
 * pipe threw. Undefined when there are no such pipes, or when Nest's context creator does not look as expected.
 */
export function itemValidator(
  creator: ExternalContextCreator,
  instance: object,
  methodName: string,
  items: Type,
): ((value: unknown) => Promise<unknown>) | undefined {
  const { pipesContextCreator, pipesConsumer } = creator as unknown as PipeCreators;
  if (!pipesContextCreator || !pipesConsumer) return undefined;
  const callback = (instance as Record<string, Function>)[methodName];
  const moduleKey = creator.getContextModuleKey(instance.constructor);
  const pipes = pipesContextCreator.create(instance, callback, moduleKey);
  if (pipes.length === 0) return undefined;
  const metadata = { metatype: items, type: RpcParamtype.PAYLOAD, data: undefined };
  return (value) => pipesConsumer.apply(value, metadata, pipes);
}
