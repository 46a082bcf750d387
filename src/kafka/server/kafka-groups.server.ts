import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type Type,
} from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { MetadataScanner, ModulesContainer } from '@nestjs/core';
import { type CustomTransportStrategy, type MessageHandler, Server } from '@nestjs/microservices';
import { RpcParamtype } from '@nestjs/microservices/enums/rpc-paramtype.enum.js';
import { isObservable, lastValueFrom } from 'rxjs';
import { INTEROP_ASSIGNERS } from '../assignors/interop.assigners.js';
import { clientRetryOf } from '../client/kafka-client.factory.js';
import type { Kafka } from '../client/kafkajs.js';
import type { KafkaGroupContext } from '../context/kafka-group.context.js';
import { DeadLetterPublisher } from '../dead-letter/dead-letter-publisher.js';
import type { KafkaHandlerDeclaration } from '../decorators/kafka-handler.decorator.js';
import { KafkaGuardRejectedError } from '../errors/kafka-guard-rejected.error.js';
import { KafkaHandlerDefinitionError } from '../errors/kafka-handler-definition.error.js';
import {
  KAFKA_CLIENT,
  KAFKA_FEATURE_OPTIONS,
  KAFKA_GROUPS_TRANSPORT,
  KAFKA_HANDLER_EXTRAS,
  KAFKA_HANDLER_METADATA,
  KAFKA_MODULE_OPTIONS,
} from '../kafka.constants.js';
import {
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  type KafkaFeatureOptions,
  type KafkaModuleOptions,
  resolveTopic,
} from '../kafka.options.js';
import { combineObservers, type MemberObserver } from './member-observer.js';
import { type DiscoveredHandler, planGroups } from './group-plan.js';
import { GroupRunner } from './group-runner.js';

/** The message Nest's RPC pipeline throws when a guard refuses a message. */
const FORBIDDEN_MESSAGE = 'Forbidden resource';

interface RegisteredHandler {
  topic: string;
  callback: MessageHandler;
  declaration: KafkaHandlerDeclaration;
}

/** Whether the method's `@Payload()` parameter is typed `Buffer`: then the handler gets the raw bytes. */
function payloadIsBuffer(prototype: object, methodName: string): boolean {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, prototype.constructor, methodName) ?? {}) as Record<
    string,
    unknown
  >;
  const payloadKey = Object.keys(args).find((key) => key.startsWith(`${RpcParamtype.PAYLOAD}:`));
  if (payloadKey === undefined) return false;
  const types = Reflect.getMetadata('design:paramtypes', prototype, methodName) as unknown[] | undefined;
  return types?.[Number(payloadKey.split(':')[1])] === Buffer;
}

type ModuleRef = ModulesContainer extends Map<string, infer M> ? M : never;

/**
 * The custom transport strategy: one consumer group per feature module, each serving only its module's
 * `@KafkaHandler` methods. Connect it with `app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) })`.
 */
@Injectable()
export class KafkaGroupsServer
  extends Server
  implements CustomTransportStrategy, OnModuleDestroy, BeforeApplicationShutdown
{
  override readonly transportId = KAFKA_GROUPS_TRANSPORT;
  /** Handler failures reach this transport instead of being logged and dropped by Nest. */
  override readonly propagatesEventHandlerErrors = true;
  protected override readonly logger = new Logger(KafkaGroupsServer.name);

  private readonly registered: RegisteredHandler[] = [];
  private runners: GroupRunner[] = [];
  private deadLetters?: DeadLetterPublisher;
  private processingHooksSet = false;
  private stopping?: Promise<void>;
  private readonly observers: MemberObserver[] = [];

  constructor(
    @Inject(KAFKA_MODULE_OPTIONS) private readonly options: KafkaModuleOptions,
    @Inject(KAFKA_CLIENT) private readonly kafka: Kafka,
    private readonly modules: ModulesContainer,
  ) {
    super();
  }

  /** The running groups (for health, status and metrics). */
  get groups(): readonly GroupRunner[] {
    return this.runners;
  }

  /** Lets metrics (or your own code) observe every member's messages; add before `listen`. */
  addObserver(observer: MemberObserver): void {
    this.observers.push(observer);
  }

  /**
   * Keeps its own registry: the base class chains handlers that share a pattern and runs them together, which
   * would make two groups on one topic both run for every message.
   */
  override addHandler(
    pattern: unknown,
    callback: MessageHandler,
    isEventHandler = false,
    extras: Record<string, any> = {},
  ): void {
    const declaration = extras[KAFKA_HANDLER_EXTRAS] as KafkaHandlerDeclaration | undefined;
    if (!declaration) return;
    callback.isEventHandler = isEventHandler;
    callback.extras = extras;
    this.registered.push({ topic: String(pattern), callback, declaration });
  }

  override setOnProcessingStartHook(hook: Parameters<Server['setOnProcessingStartHook']>[0]): void {
    this.processingHooksSet = true;
    super.setOnProcessingStartHook(hook);
  }

  override setOnProcessingEndHook(hook: Parameters<Server['setOnProcessingEndHook']>[0]): void {
    this.processingHooksSet = true;
    super.setOnProcessingEndHook(hook);
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      this.rejectHandlersOnProviders();
      const plans = planGroups(this.options, this.discoverHandlers());
      this.deadLetters = new DeadLetterPublisher(this.kafka, clientRetryOf(this.options));
      this.runners = [...plans.values()].map(
        (plan) =>
          new GroupRunner(plan, {
            kafka: this.kafka,
            deadLetters: this.deadLetters!,
            assigners: INTEROP_ASSIGNERS,
            clientRetry: clientRetryOf(this.options),
            observer: combineObservers(this.observers),
          }),
      );
      for (const runner of this.runners) {
        this.logger.log(
          `Group "${runner.groupId}": ${runner.members.length} member(s) on ${runner.topics.map((t) => `"${t}"`).join(', ')}`,
        );
        // Joining is not awaited: a broker that is down at start must not block the application; members retry.
        void runner.start();
      }
      callback();
    } catch (error) {
      callback(error);
    }
  }

  /** Nest closes modules before the microservice: start draining here, so consumers stop while providers live. */
  onModuleDestroy(): Promise<void> {
    return this.close();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  on(): never {
    throw new Error(
      'KafkaGroupsServer does not support event listeners; use the health and status endpoints',
    );
  }

  unwrap<T>(): T {
    return this.kafka as T;
  }

  private async stopAll(): Promise<void> {
    const timeout = this.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    await Promise.all(this.runners.map((runner) => runner.stop(timeout)));
    await this.deadLetters?.disconnect();
  }

  /**
   * Walks modules and controllers in the order Nest registered their handlers, pairing each registration with
   * the controller instance and host module it came from (an inherited method shares its metadata with its base
   * class, so the registration alone cannot tell which controller it belongs to).
   */
  private discoverHandlers(): DiscoveredHandler[] {
    const scanner = new MetadataScanner();
    const discovered: DiscoveredHandler[] = [];
    let next = 0;
    for (const moduleRef of this.modules.values()) {
      for (const wrapper of moduleRef.controllers.values()) {
        const instance = wrapper.instance as object | undefined;
        if (!instance) continue;
        const prototype = Object.getPrototypeOf(instance) as object;
        for (const methodName of scanner.getAllMethodNames(prototype)) {
          const method = (prototype as Record<string, unknown>)[methodName] as object;
          const declaration = Reflect.getMetadata(KAFKA_HANDLER_METADATA, method) as
            KafkaHandlerDeclaration | undefined;
          if (!declaration) continue;
          for (const topic of declaration.topics) {
            const registration = this.registered[next++];
            if (!registration || registration.declaration !== declaration || registration.topic !== topic) {
              throw new KafkaHandlerDefinitionError(
                `Handler registration out of step at ${wrapper.name}.${methodName} ("${topic}"); was the server ` +
                  `connected with app.connectMicroservice({ strategy })?`,
              );
            }
            const feature = this.featureOptionsOf(moduleRef);
            discovered.push({
              payloadIsBuffer: payloadIsBuffer(prototype, methodName),
              topic: resolveTopic(topic, feature, `${String(wrapper.name)}.${methodName}`),
              declaration,
              controllerName: String(wrapper.name),
              moduleName: moduleRef.metatype?.name ?? String(moduleRef.name),
              feature,
              invoke: this.invoker(registration.callback),
            });
          }
        }
      }
    }
    return discovered;
  }

  private featureOptionsOf(moduleRef: ModuleRef): KafkaFeatureOptions | undefined {
    const groups = [...moduleRef.imports]
      .map(
        (imported) =>
          imported.providers.get(KAFKA_FEATURE_OPTIONS)?.instance as KafkaFeatureOptions | undefined,
      )
      .filter((options): options is KafkaFeatureOptions => options !== undefined);
    const ids = new Set(groups.map((g) => g.groupId));
    if (ids.size > 1) {
      throw new KafkaHandlerDefinitionError(
        `Module ${moduleRef.metatype?.name} imports KafkaModule.forFeature for several groups (${[...ids].join(', ')}); ` +
          'a module has one consumer group: split the controllers into one module per group',
      );
    }
    return groups[0];
  }

  private rejectHandlersOnProviders(): void {
    const scanner = new MetadataScanner();
    for (const moduleRef of this.modules.values()) {
      for (const wrapper of moduleRef.providers.values()) {
        const instance = wrapper.instance as object | null | undefined;
        if (!instance || typeof instance !== 'object' || wrapper.metatype === undefined) continue;
        const prototype = Object.getPrototypeOf(instance) as object | null;
        if (!prototype || prototype === Object.prototype) continue;
        for (const methodName of scanner.getAllMethodNames(prototype)) {
          const method = (prototype as Record<string, unknown>)[methodName];
          if (typeof method === 'function' && Reflect.hasMetadata(KAFKA_HANDLER_METADATA, method)) {
            throw new KafkaHandlerDefinitionError(
              `@KafkaHandler on ${(wrapper.metatype as Type).name ?? wrapper.name}.${methodName}, a provider of module ` +
                `${moduleRef.metatype?.name}: handlers must be controller methods; move it into a @Controller()`,
            );
          }
        }
      }
    }
  }

  /** Dispatches one message through Nest's pipeline and reports the handler's real failure, if any. */
  private invoker(callback: MessageHandler): DiscoveredHandler['invoke'] {
    const run = async (data: unknown, context: KafkaGroupContext): Promise<unknown> => {
      try {
        const result = await callback(data, context);
        if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
      } catch (thrown) {
        return context.handlerError ?? this.pipelineFailure(thrown, context);
      }
      // Failed even if a user's exception filter swallowed the error.
      return context.handlerError;
    };
    if (!this.processingHooksSet) return run;
    return (data, context) =>
      new Promise<unknown>((resolve) => {
        void this.runWithProcessingHooks(context, async (runEndHook) => {
          try {
            resolve(await run(data, context));
          } finally {
            runEndHook();
          }
        });
      });
  }

  /** A failure outside the handler and its pipes: a guard's rejection, or a user interceptor's error. */
  private pipelineFailure(thrown: unknown, context: KafkaGroupContext): unknown {
    const message = (thrown as { message?: unknown } | null)?.message;
    if (message === FORBIDDEN_MESSAGE) {
      return new KafkaGuardRejectedError(context.topic, context.groupId, FORBIDDEN_MESSAGE);
    }
    return thrown;
  }
}
