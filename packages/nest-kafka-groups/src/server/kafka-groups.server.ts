import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type Type,
} from '@nestjs/common';
import { ExternalContextCreator, MetadataScanner, ModuleRef, ModulesContainer } from '@nestjs/core';
import { type CustomTransportStrategy, Server } from '@nestjs/microservices';
import { INTEROP_ASSIGNERS } from '../assignors/interop.assigners.js';
import { clientRetryOf, consumerRetryOf, createKafkaClient } from '../client/kafka-client.factory.js';
import { compressionType, type Kafka } from '../client/kafkajs.js';
import { securityIdentityOf } from '../client/security-failures.js';
import { DeadLetterPublisher } from '../dead-letter/dead-letter-publisher.js';
import type { KafkaHandlerDeclaration } from '../decorators/kafka-handler.decorator.js';
import { KafkaHandlerDefinitionError } from '../errors/kafka-handler-definition.error.js';
import {
  KAFKA_CLIENT,
  KAFKA_FEATURE_OPTIONS,
  KAFKA_GROUPS_TRANSPORT,
  KAFKA_HANDLER_METADATA,
  KAFKA_MODULE_OPTIONS,
} from '../kafka.constants.js';
import {
  type KafkaFeatureOptions,
  type KafkaModuleOptions,
  resolveRestartBackoff,
  resolveTopic,
} from '../kafka.options.js';
import { KafkaShutdown } from '../shutdown/kafka-shutdown.js';
import { combineObservers, type MemberObserver } from './member-observer.js';
import { type DiscoveredHandler, planGroups } from './group-plan.js';
import { GroupRunner } from './group-runner.js';
import { TopicProvisioner } from './topic-provisioner.js';
import { HandlerPipelineFactory, type HandlerInvoker, payloadIsBuffer } from './handler-pipeline.js';

type HostModule = ModulesContainer extends Map<string, infer M> ? M : never;

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
  protected override readonly logger = new Logger(KafkaGroupsServer.name);

  private runners: GroupRunner[] = [];
  private deadLetters?: DeadLetterPublisher;
  private processingHooksSet = false;
  private stopping?: Promise<void>;
  private readonly observers: MemberObserver[] = [];
  private readonly pipelines: HandlerPipelineFactory;

  constructor(
    @Inject(KAFKA_MODULE_OPTIONS) private readonly options: KafkaModuleOptions,
    @Inject(KAFKA_CLIENT) private readonly kafka: Kafka,
    private readonly modules: ModulesContainer,
    contextCreator: ExternalContextCreator,
    moduleRef: ModuleRef,
    private readonly shutdown: KafkaShutdown,
  ) {
    super();
    this.pipelines = new HandlerPipelineFactory(contextCreator, moduleRef);
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
   * Nest offers this transport the `@KafkaHandler` methods (bound to its transport id) with a pipeline it built.
   * They are discovered again at `listen`, where the host module (and so the group) of each is known, and run
   * through a pipeline of this library's (see HandlerPipelineFactory). The base class is not called: it chains
   * handlers that share a pattern, which would make two groups on one topic both run for every message.
   */
  override addHandler(): void {}

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
      this.deadLetters = new DeadLetterPublisher(
        this.kafka,
        clientRetryOf(this.options),
        compressionType(this.options.compression),
        securityIdentityOf(this.options),
      );
      const consumerKafka = createKafkaClient({
        ...this.options,
        clientRetry: consumerRetryOf(this.options),
      });
      const provisioner = new TopicProvisioner(this.kafka);
      this.runners = [...plans.values()].map(
        (plan) =>
          new GroupRunner(
            plan,
            {
              // The consumers' own client: connections and group requests with the consumers' shorter retry budget.
              kafka: consumerKafka,
              deadLetters: this.deadLetters!,
              assigners: INTEROP_ASSIGNERS,
              clientRetry: consumerRetryOf(this.options),
              identity: securityIdentityOf(this.options),
              restartBackoff: resolveRestartBackoff(this.options),
              observer: combineObservers(this.observers),
            },
            provisioner,
          ),
      );
      for (const runner of this.runners) {
        this.logger.log(
          `Group "${runner.groupId}": ${runner.members.length} member(s) on ${runner.topics.map((t) => `"${t}"`).join(', ')}`,
        );
        // Not awaited: a broker that is down at start must not block the application (the HTTP port opens at
        // once, health says 503); the topics are checked or created, then the members join, each retrying.
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

  /** Every group drains and leaves within what is left of `shutdownTimeoutMs`; says once what it waits for. */
  private async stopAll(): Promise<void> {
    const timeout = this.shutdown.remainingMs();
    const members = this.runners.flatMap((runner) => runner.members);
    const inFlight = members.reduce((sum, member) => sum + member.inFlight, 0);
    const joining = members.filter((member) => member.state !== 'joined').length;
    if (members.length > 0) {
      this.logger.log(
        `Stopping: draining ${inFlight} in-flight message(s), leaving ${this.runners.length} group(s)` +
          (joining > 0 ? ` (${joining} of ${members.length} member(s) not joined: connecting, rebalancing or crashed)` : '') +
          `, at most ${timeout} ms`,
      );
    }
    await Promise.all(this.runners.map((runner) => runner.stop(timeout)));
    if (this.deadLetters) {
      await this.shutdown.within('Disconnecting the dead-letter producer', this.deadLetters.disconnect());
    }
  }

  /** Every `@KafkaHandler` method of every controller, with the module that hosts it (and so its group). */
  private discoverHandlers(): DiscoveredHandler[] {
    const scanner = new MetadataScanner();
    const discovered: DiscoveredHandler[] = [];
    for (const [moduleKey, moduleRef] of this.modules) {
      for (const wrapper of moduleRef.controllers.values()) {
        const instance = wrapper.instance as object | undefined;
        if (!instance) continue;
        const prototype = Object.getPrototypeOf(instance) as object;
        for (const methodName of scanner.getAllMethodNames(prototype)) {
          const method = (prototype as Record<string, unknown>)[methodName] as object;
          const declaration = Reflect.getMetadata(KAFKA_HANDLER_METADATA, method) as
            KafkaHandlerDeclaration | undefined;
          if (!declaration) continue;
          const feature = this.featureOptionsOf(moduleRef);
          const handler = { instance, moduleKey, methodName, isStatic: wrapper.isDependencyTreeStatic() };
          const invoke = this.withProcessingHooks(this.pipelines.create(handler));
          const { items } = declaration.options;
          const validateItem = items && this.pipelines.itemValidator(handler, items);
          if (items && !validateItem) {
            this.logger.warn(
              `${String(wrapper.name)}.${methodName} declares items: ${items.name}, but no global, controller or ` +
                'method pipe runs on it (add a ValidationPipe): its elements reach the handler as decoded, unvalidated',
            );
          }
          // The registered class, not the declaring one: an inherited method belongs to each subclass's module.
          const controllerName = String(wrapper.name);
          for (const topic of declaration.topics) {
            discovered.push({
              topic: resolveTopic(topic, feature, `${controllerName}.${methodName}`),
              declaration,
              payloadIsBuffer: payloadIsBuffer(prototype, methodName),
              controllerName,
              moduleName: moduleRef.metatype?.name ?? String(moduleRef.name),
              feature,
              invoke,
              validateItem,
            });
          }
        }
      }
    }
    return discovered;
  }

  private featureOptionsOf(moduleRef: HostModule): KafkaFeatureOptions | undefined {
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

  /** Nest's processing hooks (tracing and the like) around each message, only when something set them. */
  private withProcessingHooks(invoke: HandlerInvoker): HandlerInvoker {
    if (!this.processingHooksSet) return invoke;
    // Settles with the handler's outcome, or with the hook's error when a hook throws or rejects, so the batch
    // never waits on a promise nothing will settle.
    return (data, context) =>
      new Promise<unknown>((resolve) => {
        const run = async (runEndHook: () => void) => {
          try {
            resolve(await invoke(data, context));
          } catch (error) {
            resolve(error);
          } finally {
            runEndHook();
          }
        };
        try {
          Promise.resolve(this.runWithProcessingHooks(context, run)).catch(resolve);
        } catch (hookError) {
          resolve(hookError);
        }
      });
  }
}
