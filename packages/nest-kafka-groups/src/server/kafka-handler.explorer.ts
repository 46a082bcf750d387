import { Injectable, Logger, type Type } from '@nestjs/common';
import { DiscoveryService, ExternalContextCreator, MetadataScanner, ModuleRef } from '@nestjs/core';
import type { KafkaHandlerDeclaration } from '../decorators/kafka-handler.decorator.js';
import { KafkaHandlerDefinitionError } from '../errors/kafka-handler-definition.error.js';
import { KAFKA_FEATURE_OPTIONS, KAFKA_HANDLER_METADATA } from '../kafka.constants.js';
import { type KafkaFeatureOptions, resolveTopic } from '../kafka.options.js';
import type { DiscoveredHandler } from './group-plan.js';
import type { KafkaRebalanceListener } from './rebalance-listener.js';
import {
  type ControllerMethod,
  HandlerPipelineFactory,
  type HandlerInvoker,
  payloadIsBuffer,
} from './handler-pipeline.js';
import {
  type DiscoveredWrapper,
  type HostModule,
  importedInstances,
  isDurableTree,
  isStaticTree,
  moduleKeyOf,
  moduleNameOf,
} from './nest-internals.js';

/**
 * Finds every `@KafkaHandler` method of every registered controller, with the module that hosts it (and so the
 * consumer group it belongs to), and builds its pipeline. Run once, when the transport starts listening.
 */
@Injectable()
export class KafkaHandlerExplorer {
  private readonly pipelines: HandlerPipelineFactory;
  private readonly logger = new Logger(KafkaHandlerExplorer.name);

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    contextCreator: ExternalContextCreator,
    moduleRef: ModuleRef,
  ) {
    this.pipelines = new HandlerPipelineFactory(contextCreator, moduleRef);
  }

  /**
   * The handlers, one entry per topic, each invoker passed through `wrap` with its `Class.method` name (the
   * server adds Nest's processing hooks and tracing there). Throws a KafkaHandlerDefinitionError for a handler on a
   * provider or a module with two groups, a KafkaDecoratorMetadataError for a `@Payload()` handler compiled without
   * decorator metadata.
   */
  explore(wrap: (invoke: HandlerInvoker, handlerName: string) => HandlerInvoker): DiscoveredHandler[] {
    this.rejectHandlersOnProviders();
    const discovered: DiscoveredHandler[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const instance = wrapper.instance as object | undefined;
      const host = wrapper.host;
      if (!instance || !host) continue;
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = (prototype as Record<string, unknown>)[methodName] as object;
        const declaration = Reflect.getMetadata(KAFKA_HANDLER_METADATA, method) as
          KafkaHandlerDeclaration | undefined;
        if (!declaration) continue;
        const feature = featureOptionsOf(host);
        const rebalanceListener = rebalanceListenerOf(host, feature);
        const handler = {
          instance,
          moduleKey: moduleKeyOf(host),
          methodName,
          isStatic: isStaticTree(wrapper),
          isDurable: isDurableTree(wrapper),
        };
        // The registered class, not the declaring one: an inherited method belongs to each subclass's module.
        const controllerName = String(wrapper.name);
        const handlerName = `${controllerName}.${methodName}`;
        const rawPayload = payloadIsBuffer(prototype, methodName, handlerName);
        const invoke = wrap(this.pipelines.create(handler), handlerName);
        const validateItem = this.itemValidator(handler, declaration, handlerName);
        for (const topic of declaration.topics) {
          discovered.push({
            topic: resolveTopic(topic, feature, handlerName),
            declaration,
            payloadIsBuffer: rawPayload,
            controllerName,
            moduleName: moduleNameOf(host),
            feature,
            invoke,
            validateItem,
            rebalanceListener,
          });
        }
      }
    }
    return discovered;
  }

  /** A batch handler's per-element pipes (`items`); says so once when it declares `items` but no pipe runs. */
  private itemValidator(handler: ControllerMethod, declaration: KafkaHandlerDeclaration, name: string) {
    const { items } = declaration.options;
    if (!items) return undefined;
    const validateItem = this.pipelines.itemValidator(handler, items);
    if (!validateItem) {
      this.logger.warn(
        `${name} declares items: ${items.name}, but no global, controller or method pipe runs on it (add a ` +
          'ValidationPipe): its elements reach the handler as decoded, unvalidated',
      );
    }
    return validateItem;
  }

  private rejectHandlersOnProviders(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as object | null | undefined;
      if (!instance || typeof instance !== 'object' || wrapper.metatype === undefined) continue;
      const prototype = Object.getPrototypeOf(instance) as object | null;
      if (!prototype || prototype === Object.prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = (prototype as Record<string, unknown>)[methodName];
        if (typeof method === 'function' && Reflect.hasMetadata(KAFKA_HANDLER_METADATA, method)) {
          throw new KafkaHandlerDefinitionError(
            `@KafkaHandler on ${nameOf(wrapper)}.${methodName}, a provider of module ` +
              `${wrapper.host ? moduleNameOf(wrapper.host) : undefined}: handlers must be controller methods; ` +
              'move it into a @Controller()',
          );
        }
      }
    }
  }
}

function nameOf(wrapper: DiscoveredWrapper): string {
  return (wrapper.metatype as Type).name ?? String(wrapper.name);
}

/**
 * The instance of the module's `forFeature` rebalanceListener: a singleton provider of that module (so it can
 * inject the module's services); anything else is refused at start-up.
 */
function rebalanceListenerOf(
  host: HostModule,
  feature: KafkaFeatureOptions | undefined,
): KafkaRebalanceListener | undefined {
  const listener = feature?.rebalanceListener;
  if (!listener) return undefined;
  const wrapper = host.providers.get(listener);
  const instance = wrapper?.isDependencyTreeStatic()
    ? (wrapper.instance as KafkaRebalanceListener)
    : undefined;
  if (!instance) {
    throw new KafkaHandlerDefinitionError(
      `forFeature(${feature.groupId}).rebalanceListener: ${listener.name} is not a singleton provider of module ` +
        `${moduleNameOf(host)}; add it to that module's providers (default scope)`,
    );
  }
  return instance;
}

/** The group the module declared with `KafkaModule.forFeature`, found among its imports. */
function featureOptionsOf(host: HostModule): KafkaFeatureOptions | undefined {
  const groups = importedInstances(host, KAFKA_FEATURE_OPTIONS) as KafkaFeatureOptions[];
  const ids = new Set(groups.map((g) => g.groupId));
  if (ids.size > 1) {
    throw new KafkaHandlerDefinitionError(
      `Module ${moduleNameOf(host)} imports KafkaModule.forFeature for several groups (${[...ids].join(', ')}); ` +
        'a module has one consumer group: split the controllers into one module per group',
    );
  }
  return groups[0];
}
