import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { Controller, Inject, Injectable, Module, Scope } from '@nestjs/common';
import {
  type ContextId,
  ContextIdFactory,
  type ContextIdStrategy,
  DiscoveryModule,
  DiscoveryService,
  ExternalContextCreator,
  type HostComponentInfo,
  ModuleRef,
  REQUEST,
} from '@nestjs/core';
import { Ctx, Payload, type RequestContext } from '@nestjs/microservices';
import { Test, type TestingModule } from '@nestjs/testing';
import { KafkaGroupContext } from '../context/kafka-group.context.js';
import { HandlerPipelineFactory, type HandlerInvoker } from './handler-pipeline.js';
import { isDurableTree, isStaticTree, moduleKeyOf } from './nest-internals.js';

/** What each handler call saw: a tenant, the offset or payload, the provider instance it was given. */
const seen: unknown[][] = [];

/** Nest's documented multi-tenant strategy, keyed by a message header instead of an HTTP one. */
class TenantFromHeader implements ContextIdStrategy<RequestContext<unknown, KafkaGroupContext>> {
  readonly tenants = new Map<string, ContextId>();

  attach(contextId: ContextId, request: RequestContext<unknown, KafkaGroupContext>) {
    const tenantId = String(request.getContext().headers['x-tenant-id']);
    let tenantTree = this.tenants.get(tenantId);
    if (!tenantTree) {
      tenantTree = ContextIdFactory.create();
      this.tenants.set(tenantId, tenantTree);
    }
    return {
      resolve: (info: HostComponentInfo) => (info.isTreeDurable ? tenantTree : contextId),
      payload: { tenantId },
    };
  }
}

/** Built once per tenant: the strategy's payload is its REQUEST (none without a strategy, as under Nest). */
@Injectable({ scope: Scope.REQUEST, durable: true })
class TenantConfig {
  static built = 0;
  constructor(@Inject(REQUEST) readonly request: { tenantId: string } | undefined) {
    TenantConfig.built++;
  }
}

@Controller()
class TenantController {
  constructor(private readonly config: TenantConfig) {}

  handle(@Payload() payload: unknown, @Ctx() context: KafkaGroupContext): void {
    seen.push([this.config.request?.tenantId, context.offset, this.config]);
  }
}

/** Request-scoped, not durable: built per message, its REQUEST the message's RequestContext with the payload. */
@Injectable({ scope: Scope.REQUEST })
class PerMessage {
  constructor(@Inject(REQUEST) readonly request: RequestContext & { tenantId?: string }) {}
}

@Controller()
class PerMessageController {
  constructor(private readonly perMessage: PerMessage) {}

  handle(@Payload() _payload: unknown): void {
    seen.push([this.perMessage.request.tenantId, this.perMessage.request.getData(), this.perMessage]);
  }
}

@Module({ controllers: [TenantController, PerMessageController], providers: [TenantConfig, PerMessage] })
class TenantModule {}

function contextFor(tenant: string, offset: string): KafkaGroupContext {
  const message = {
    key: null,
    value: Buffer.from('{}'),
    offset,
    timestamp: '0',
    attributes: 0,
    headers: { 'x-tenant-id': Buffer.from(tenant) },
  };
  return new KafkaGroupContext('orders', 0, message, 'billing', 1, new AbortController());
}

describe('HandlerPipelineFactory with request-scoped controllers', () => {
  let app: TestingModule;
  let strategy: TenantFromHeader;
  let invokerFor: (type: Function) => HandlerInvoker;

  beforeAll(async () => {
    app = await Test.createTestingModule({ imports: [DiscoveryModule, TenantModule] }).compile();
    const factory = new HandlerPipelineFactory(app.get(ExternalContextCreator), app.get(ModuleRef));
    const wrappers = app.get(DiscoveryService).getControllers();
    invokerFor = (type) => {
      const wrapper = wrappers.find((w) => w.metatype === type)!;
      return factory.create({
        instance: wrapper.instance as object,
        moduleKey: moduleKeyOf(wrapper.host!),
        methodName: 'handle',
        isStatic: isStaticTree(wrapper),
        isDurable: isDurableTree(wrapper),
      });
    };
  });

  afterEach(() => ContextIdFactory.apply(undefined as unknown as ContextIdStrategy));
  afterAll(() => app.close());

  /** What the handler saw for one message; the failure the invoker resolved with, if any, is thrown. */
  async function run(invoke: HandlerInvoker, tenant: string, offset: string): Promise<unknown[]> {
    const failure = await invoke({ tenant }, contextFor(tenant, offset));
    if (failure) throw failure;
    return seen.pop()!;
  }

  test("a ContextIdStrategy applied with ContextIdFactory.apply is consulted per message, as by Nest's own transports: a durable provider is built once per tenant and gets the strategy's payload as its REQUEST", async () => {
    strategy = new TenantFromHeader();
    ContextIdFactory.apply(strategy);
    TenantConfig.built = 0;
    const invoke = invokerFor(TenantController);

    const [a1Tenant, a1Offset, a1Config] = (await run(invoke, 'acme', '1')) as [string, string, TenantConfig];
    const [, , a2Config] = (await run(invoke, 'acme', '2')) as [string, string, TenantConfig];
    const [bTenant, , bConfig] = (await run(invoke, 'globex', '3')) as [string, string, TenantConfig];

    expect([a1Tenant, a1Offset, bTenant]).toEqual(['acme', '1', 'globex']);
    expect(a2Config).toBe(a1Config);
    expect(bConfig).not.toBe(a1Config);
    expect(TenantConfig.built).toBe(2);
    expect([...strategy.tenants.keys()]).toEqual(['acme', 'globex']);
  });

  test('a request-scoped provider that is not durable is still built per message, its REQUEST the RequestContext with the payload merged in', async () => {
    strategy = new TenantFromHeader();
    ContextIdFactory.apply(strategy);
    const invoke = invokerFor(PerMessageController);

    const [tenant, data, first] = (await run(invoke, 'acme', '1')) as [string, unknown, PerMessage];
    const [, , second] = (await run(invoke, 'acme', '2')) as [string, unknown, PerMessage];

    expect(tenant).toBe('acme');
    expect(data).toEqual({ tenant: 'acme' });
    expect(second).not.toBe(first);
  });

  test("without a strategy every message gets a context of its own: a durable provider is built per message, with no REQUEST, as under Nest's own transports", async () => {
    TenantConfig.built = 0;
    const invoke = invokerFor(TenantController);

    const [tenant, , first] = (await run(invoke, 'acme', '1')) as [undefined, string, TenantConfig];
    const [, , second] = (await run(invoke, 'acme', '2')) as [undefined, string, TenantConfig];

    expect(second).not.toBe(first);
    expect(TenantConfig.built).toBe(2);
    expect(tenant).toBeUndefined();
    expect(first.request).toBeUndefined();
  });
});
