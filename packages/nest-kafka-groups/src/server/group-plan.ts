import type { KafkaHandlerDeclaration } from '../decorators/kafka-handler.decorator.js';
import { KafkaHandlerDefinitionError } from '../errors/kafka-handler-definition.error.js';
import {
  DEFAULT_MAX_BATCH_SIZE,
  deadLetterTopicFor,
  type KafkaFeatureOptions,
  type KafkaModuleOptions,
  resolveGroupSettings,
  resolveHandlerSettings,
  type ResolvedGroupSettings,
} from '../kafka.options.js';
import { RetryTopicChain } from '../retry/retry-topic-chain.js';
import type { BatchRoute, GroupRoute } from './group-route.js';
import type { KafkaRebalanceListener } from './rebalance-listener.js';

/** A `@KafkaHandler` method found on a registered controller, with the module that hosts it. */
export interface DiscoveredHandler {
  topic: string;
  declaration: KafkaHandlerDeclaration;
  /** The `@Payload()` parameter is typed Buffer: hand it the raw bytes unless the options say otherwise. */
  payloadIsBuffer: boolean;
  /** Name of the registered controller class (a subclass when the method is inherited). */
  controllerName: string;
  moduleName: string;
  /** The module's `forFeature` options; undefined when the module declared no group. */
  feature?: KafkaFeatureOptions;
  invoke: GroupRoute['invoke'];
  /** A batch handler's per-element pipes (`items`); see BatchRoute. */
  validateItem?: BatchRoute['validateItem'];
  /** The instance of the module's `forFeature` rebalanceListener, if it names one. */
  rebalanceListener?: KafkaRebalanceListener;
}

export interface GroupPlan {
  settings: ResolvedGroupSettings;
  routes: Map<string, GroupRoute>;
  /** Modules that contributed handlers, for error messages. */
  modules: Set<string>;
  /** The rebalance listeners of the modules that declare the group (one each, in discovery order). */
  rebalanceListeners: KafkaRebalanceListener[];
}

/** JSON with sorted keys, so settings given in another key order still compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

/**
 * Turns the discovered handlers into one plan per consumer group, and refuses what cannot be served: a handler
 * whose module has no group, two handlers for one topic in one group, one group id with conflicting settings.
 */
export function planGroups(root: KafkaModuleOptions, handlers: DiscoveredHandler[]): Map<string, GroupPlan> {
  const plans = new Map<string, GroupPlan>();
  for (const handler of handlers) {
    const handlerName = `${handler.controllerName}.${handler.declaration.methodName}`;
    const { feature } = handler;
    if (!feature) {
      throw new KafkaHandlerDefinitionError(
        `${handlerName} handles topic "${handler.topic}" but module ${handler.moduleName} declares no consumer group: ` +
          `add KafkaModule.forFeature({ groupId: '...' }) to the imports of ${handler.moduleName}`,
      );
    }
    const settings = resolveGroupSettings(root, feature);
    let plan = plans.get(feature.groupId);
    if (!plan) {
      plan = { settings, routes: new Map(), modules: new Set(), rebalanceListeners: [] };
      plans.set(feature.groupId, plan);
    } else if (canonical(plan.settings) !== canonical(settings)) {
      throw new KafkaHandlerDefinitionError(
        `Consumer group "${feature.groupId}" is declared by modules ${[...plan.modules].join(', ')} and ` +
          `${handler.moduleName} with different settings (${JSON.stringify(plan.settings)} vs ` +
          `${JSON.stringify(settings)}); give them the same forFeature options`,
      );
    }
    plan.modules.add(handler.moduleName);
    if (handler.rebalanceListener && !plan.rebalanceListeners.includes(handler.rebalanceListener))
      plan.rebalanceListeners.push(handler.rebalanceListener);
    const existing = plan.routes.get(handler.topic);
    if (existing?.isRetryTopic) {
      throw new KafkaHandlerDefinitionError(
        `Consumer group "${feature.groupId}": ${handlerName} handles topic "${handler.topic}", a retry topic of ` +
          `${existing.handlerName}; give that handler other retry topic names (retry.topicSuffix or retry.topicName)`,
      );
    }
    if (existing) {
      throw new KafkaHandlerDefinitionError(
        `Consumer group "${feature.groupId}" has two handlers for topic "${handler.topic}": ` +
          `${existing.handlerName} and ${handlerName}; one topic has one handler per group`,
      );
    }
    const { options } = handler.declaration;
    const handlerSettings = resolveHandlerSettings(root, feature, {
      ...options,
      raw: options.raw ?? handler.payloadIsBuffer,
    });
    const deadLetterTopic = deadLetterTopicFor(handler.topic, handlerSettings.deadLetter);
    const { retry } = handlerSettings;
    if (retry.topics && options.batch) {
      throw new KafkaHandlerDefinitionError(
        `${handlerName} is a batch handler: retry topics (retry.topics) serve single-message handlers only; ` +
          'turn them off for it (@KafkaHandler(topic, { batch: true, retry: { topics: false } }))',
      );
    }
    const retryTopics = retry.topics
      ? new RetryTopicChain(handler.topic, retry.delaysMs!, deadLetterTopic, retry)
      : undefined;
    const route: GroupRoute = {
      topic: handler.topic,
      handlerName,
      settings: handlerSettings,
      deadLetterTopic,
      retryTopics,
      invoke: handler.invoke,
      ...(options.batch && {
        batch: {
          maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
          validateItem: handler.validateItem,
        },
      }),
    };
    plan.routes.set(handler.topic, route);
    for (const topic of retryTopics?.topics ?? []) {
      const taken = plan.routes.get(topic);
      if (taken) {
        throw new KafkaHandlerDefinitionError(
          `Consumer group "${feature.groupId}": retry topic "${topic}" of ${handlerName} (topic "${handler.topic}") ` +
            `is also ${taken.isRetryTopic ? 'a retry topic' : 'the topic'} of ${taken.handlerName}; ` +
            'give one of them other retry topic names (retry.topicSuffix or retry.topicName)',
        );
      }
      plan.routes.set(topic, { ...route, topic, isRetryTopic: true });
    }
  }
  return plans;
}
