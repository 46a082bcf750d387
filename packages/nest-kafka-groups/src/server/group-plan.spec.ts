import { describe, expect, test } from '@jest/globals';
import type { KafkaHandlerDeclaration } from '../decorators/kafka-handler.decorator.js';
import { KafkaHandlerDefinitionError } from '../errors/kafka-handler-definition.error.js';
import {
  DEFAULT_RETRY,
  type KafkaFeatureOptions,
  type KafkaHandlerOptions,
  type KafkaModuleOptions,
} from '../kafka.options.js';
import { type DiscoveredHandler, planGroups } from './group-plan.js';

const root: KafkaModuleOptions = { brokers: ['localhost:9092'] };

class AirnavController {}
class Flight24Controller {}

function handler(
  topic: string,
  controllerName: string,
  methodName: string,
  moduleName: string,
  feature: KafkaFeatureOptions | undefined,
  options: KafkaHandlerOptions = {},
): DiscoveredHandler {
  const declaration: KafkaHandlerDeclaration = {
    topics: [topic],
    options,
    declaringClass: controllerName === 'Flight24Controller' ? Flight24Controller : AirnavController,
    methodName,
  };
  return {
    topic,
    declaration,
    payloadIsBuffer: false,
    controllerName,
    moduleName,
    feature,
    invoke: async () => undefined,
  };
}

function definitionError(fn: () => unknown): KafkaHandlerDefinitionError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(KafkaHandlerDefinitionError);
  return thrown as KafkaHandlerDefinitionError;
}

describe('planGroups', () => {
  test('no handlers, no plans', () => {
    expect(planGroups(root, []).size).toBe(0);
  });

  test('one handler makes one plan with its resolved route', () => {
    const invoke = async () => 'done';
    const discovered = {
      ...handler('airnav', 'AirnavController', 'handle', 'AirnavModule', { groupId: 'airnav' }),
      invoke,
    };
    const plans = planGroups(root, [discovered]);
    expect([...plans.keys()]).toEqual(['airnav']);
    const plan = plans.get('airnav')!;
    expect(plan.settings.groupId).toBe('airnav');
    expect([...plan.modules]).toEqual(['AirnavModule']);
    const route = plan.routes.get('airnav')!;
    expect(route.topic).toBe('airnav');
    expect(route.handlerName).toBe('AirnavController.handle');
    expect(route.deadLetterTopic).toBe('airnav-dlt');
    expect(route.settings.retry).toEqual(DEFAULT_RETRY);
    expect(route.invoke).toBe(invoke);
  });

  test('a handler whose module has no group is refused, naming the module and pointing at forFeature', () => {
    const error = definitionError(() =>
      planGroups(root, [handler('airnav', 'AirnavController', 'handle', 'AirnavModule', undefined)]),
    );
    expect(error.message).toContain('AirnavController.handle');
    expect(error.message).toContain('"airnav"');
    expect(error.message).toContain('module AirnavModule declares no consumer group');
    expect(error.message).toContain(
      "add KafkaModule.forFeature({ groupId: '...' }) to the imports of AirnavModule",
    );
  });

  test('two handlers for one topic in one group are refused, naming both handlers and the group', () => {
    const feature = { groupId: 'flights' };
    const error = definitionError(() =>
      planGroups(root, [
        handler('positions', 'AirnavController', 'handle', 'AirnavModule', feature),
        handler('positions', 'Flight24Controller', 'onPosition', 'Flight24Module', feature),
      ]),
    );
    expect(error.message).toContain('Consumer group "flights"');
    expect(error.message).toContain('topic "positions"');
    expect(error.message).toContain('AirnavController.handle and Flight24Controller.onPosition');
  });

  test('two modules with the same groupId form one group with the routes of both', () => {
    const plans = planGroups(root, [
      handler('airnav', 'AirnavController', 'handle', 'AirnavModule', { groupId: 'flights', concurrency: 2 }),
      handler('flight24', 'Flight24Controller', 'handle', 'Flight24Module', {
        groupId: 'flights',
        concurrency: 2,
      }),
    ]);
    expect(plans.size).toBe(1);
    const plan = plans.get('flights')!;
    expect(plan.settings.concurrency).toBe(2);
    expect([...plan.modules].sort()).toEqual(['AirnavModule', 'Flight24Module']);
    expect([...plan.routes.keys()].sort()).toEqual(['airnav', 'flight24']);
    expect(plan.routes.get('airnav')!.handlerName).toBe('AirnavController.handle');
    expect(plan.routes.get('flight24')!.handlerName).toBe('Flight24Controller.handle');
  });

  test('one group id with conflicting settings is refused, naming the group and both modules', () => {
    const error = definitionError(() =>
      planGroups(root, [
        handler('airnav', 'AirnavController', 'handle', 'AirnavModule', {
          groupId: 'flights',
          concurrency: 1,
        }),
        handler('flight24', 'Flight24Controller', 'handle', 'Flight24Module', {
          groupId: 'flights',
          concurrency: 3,
        }),
      ]),
    );
    expect(error.message).toContain(
      'Consumer group "flights" is declared by modules AirnavModule and Flight24Module with different settings',
    );
    expect(error.message).toContain('"concurrency":1');
    expect(error.message).toContain('"concurrency":3');
    expect(error.message).toMatch(/; give them the same forFeature options$/);
  });

  test('a conflict with a group already declared by two modules names all three', () => {
    const flights = { groupId: 'flights', concurrency: 2 };
    const error = definitionError(() =>
      planGroups(root, [
        handler('airnav', 'AirnavController', 'handle', 'AirnavModule', flights),
        handler('flight24', 'Flight24Controller', 'handle', 'Flight24Module', flights),
        handler('adsb', 'AirnavController', 'onAdsb', 'AdsbModule', { ...flights, concurrency: 4 }),
      ]),
    );
    expect(error.message).toContain(
      'Consumer group "flights" is declared by modules AirnavModule, Flight24Module and AdsbModule with different settings',
    );
  });

  test('the same settings given in another key order are not a conflict', () => {
    const plans = planGroups(root, [
      handler('a', 'AirnavController', 'handle', 'AirnavModule', {
        groupId: 'g',
        consumer: { sessionTimeout: 30_000, maxBytes: 1_000_000 },
      }),
      handler('b', 'Flight24Controller', 'handle', 'Flight24Module', {
        groupId: 'g',
        consumer: { maxBytes: 1_000_000, sessionTimeout: 30_000 },
      }),
    ]);
    expect([...plans.get('g')!.modules]).toEqual(['AirnavModule', 'Flight24Module']);
  });

  test('a conflict in fromBeginning is also refused', () => {
    definitionError(() =>
      planGroups(root, [
        handler('a', 'AirnavController', 'handle', 'AirnavModule', { groupId: 'g', fromBeginning: true }),
        handler('b', 'Flight24Controller', 'handle', 'Flight24Module', { groupId: 'g' }),
      ]),
    );
  });

  test('a setting left to root in one module and stated equal in the other is not a conflict', () => {
    const plans = planGroups({ ...root, concurrency: 2 }, [
      handler('a', 'AirnavController', 'handle', 'AirnavModule', { groupId: 'g' }),
      handler('b', 'Flight24Controller', 'handle', 'Flight24Module', { groupId: 'g', concurrency: 2 }),
    ]);
    expect(plans.get('g')!.routes.size).toBe(2);
  });

  test('two groups on the same topic are separate plans, each with its own route', () => {
    const plans = planGroups(root, [
      handler('positions', 'AirnavController', 'handle', 'AirnavModule', { groupId: 'airnav' }),
      handler('positions', 'Flight24Controller', 'handle', 'Flight24Module', {
        groupId: 'flight24',
        concurrency: 2,
      }),
    ]);
    expect([...plans.keys()].sort()).toEqual(['airnav', 'flight24']);
    expect(plans.get('airnav')!.routes.get('positions')!.handlerName).toBe('AirnavController.handle');
    expect(plans.get('flight24')!.routes.get('positions')!.handlerName).toBe('Flight24Controller.handle');
    expect(plans.get('airnav')!.settings.concurrency).toBe(1);
    expect(plans.get('flight24')!.settings.concurrency).toBe(2);
  });

  test('routes carry handler-level settings and dead-letter topics', () => {
    const plans = planGroups({ ...root, retry: { attempts: 2 } }, [
      handler(
        'orders',
        'AirnavController',
        'handle',
        'AirnavModule',
        { groupId: 'g', deadLetter: { topic: (t) => `${t}.DLT` } },
        { retry: { attempts: 7 }, raw: true },
      ),
      handler('payments', 'AirnavController', 'other', 'AirnavModule', { groupId: 'g' }),
    ]);
    const orders = plans.get('g')!.routes.get('orders')!;
    expect(orders.settings.retry.attempts).toBe(7);
    expect(orders.settings.raw).toBe(true);
    expect(orders.deadLetterTopic).toBe('orders.DLT');
    const payments = plans.get('g')!.routes.get('payments')!;
    expect(payments.settings.retry.attempts).toBe(2);
    expect(payments.settings.raw).toBe(false);
    expect(payments.deadLetterTopic).toBe('payments-dlt');
  });

  test('a batch handler gets its batch route: maxBatchSize (default 500) and its per-element pipes', async () => {
    const airnav = { groupId: 'airnav' };
    const validateItem = async (value: unknown) => value;
    const plans = planGroups(root, [
      {
        ...handler('positions', 'AirnavController', 'onBatch', 'AirnavModule', airnav, { batch: true }),
        validateItem,
      },
      handler('bounded', 'AirnavController', 'onBounded', 'AirnavModule', airnav, {
        batch: true,
        maxBatchSize: 20,
      }),
      handler('single', 'AirnavController', 'onOne', 'AirnavModule', airnav),
    ]);
    const routes = plans.get('airnav')!.routes;
    expect(routes.get('positions')!.batch).toEqual({ maxBatchSize: 500, validateItem });
    expect(routes.get('bounded')!.batch).toEqual({ maxBatchSize: 20, validateItem: undefined });
    expect('batch' in routes.get('single')!).toBe(false);
  });

  test('retry topics: a route per retry topic, served by the same handler, with the chain', () => {
    const discovered = handler(
      'orders',
      'AirnavController',
      'handle',
      'AirnavModule',
      { groupId: 'g' },
      {
        retry: { topics: true, delaysMs: [1000, 10000] },
      },
    );
    const routes = planGroups(root, [discovered]).get('g')!.routes;
    expect([...routes.keys()]).toEqual(['orders', 'orders-retry-1000', 'orders-retry-10000']);
    const main = routes.get('orders')!;
    const retry = routes.get('orders-retry-10000')!;
    expect(main.isRetryTopic).toBeUndefined();
    expect(retry).toMatchObject({
      topic: 'orders-retry-10000',
      isRetryTopic: true,
      deadLetterTopic: 'orders-dlt',
    });
    expect(retry.retryTopics).toBe(main.retryTopics);
    expect(retry.invoke).toBe(main.invoke);
  });

  test('a retry topic that is another handler topic is refused, in either order', () => {
    const retrying = handler(
      'orders',
      'AirnavController',
      'handle',
      'AirnavModule',
      { groupId: 'g' },
      {
        retry: { topics: true, delaysMs: [1000] },
      },
    );
    const other = handler('orders-retry', 'Flight24Controller', 'other', 'AirnavModule', { groupId: 'g' });
    expect(definitionError(() => planGroups(root, [retrying, other])).message).toMatch(
      /Flight24Controller.other handles topic "orders-retry", a retry topic of AirnavController.handle/,
    );
    expect(definitionError(() => planGroups(root, [other, retrying])).message).toMatch(
      /retry topic "orders-retry" of AirnavController.handle \(topic "orders"\) is also the topic of Flight24Controller.other/,
    );
  });

  test('retry topics on a batch handler are refused, naming the handler', () => {
    const batch = handler(
      'positions',
      'AirnavController',
      'onBatch',
      'AirnavModule',
      { groupId: 'g' },
      {
        batch: true,
        retry: { topics: true },
      },
    );
    const { message } = definitionError(() => planGroups(root, [batch]));
    expect(message).toMatch(
      /AirnavController.onBatch is a batch handler: retry topics \(retry.topics\) serve single-message handlers only/,
    );
    expect(message).toContain(
      'turn them off for it (@KafkaHandler(topic, { batch: true, retry: { topics: false } }))',
    );
  });

  test('two handlers whose retry topics share a name are refused, naming both and how to rename', () => {
    const shared = { topics: true, delaysMs: [1000], topicName: () => 'shared-retry' };
    const orders = handler(
      'orders',
      'AirnavController',
      'handle',
      'AirnavModule',
      { groupId: 'g' },
      { retry: shared },
    );
    const payments = handler(
      'payments',
      'Flight24Controller',
      'handle',
      'AirnavModule',
      { groupId: 'g' },
      {
        retry: shared,
      },
    );
    expect(definitionError(() => planGroups(root, [orders, payments])).message).toBe(
      'Consumer group "g": retry topic "shared-retry" of Flight24Controller.handle (topic "payments") is also a ' +
        'retry topic of AirnavController.handle; give one of them other retry topic names (retry.topicSuffix or ' +
        'retry.topicName)',
    );
  });
});
