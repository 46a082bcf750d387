import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import {
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  createParamDecorator,
  type ExceptionFilter,
  type ExecutionContext,
  Injectable,
  Module,
  type NestInterceptor,
  ParseIntPipe,
  SetMetadata,
  UnauthorizedException,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { APP_FILTER, LazyModuleLoader, NestFactory, Reflector } from '@nestjs/core';
import { type AsyncMicroserviceOptions, BaseRpcExceptionFilter, Ctx, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { type Observable, tap } from 'rxjs';
import { expectErrorLines } from './support/error-lines.js';
import {
  DLT_HEADERS,
  KafkaGroupContext,
  KafkaGroupsServer,
  KafkaHandler,
  KafkaModule,
  KafkaProducer,
} from 'nest-kafka-groups';
import {
  KafkaTestClient,
  TEST_CONSUMER_TUNING,
  TEST_RETRY,
  testBrokers,
  uniqueName,
} from 'nest-kafka-groups/testing';

/**
 * Outside-in probe 8: what a NestJS team writes in its first week with the library (hybrid app with `useGlobal*`
 * enhancers, custom decorators, the testing module, lazy modules, async configuration), against a real broker
 * (docs/RELIABILITY.md, findings 23 on).
 */

const LOGGER = ['error', 'warn'] as const;

function rootOptions() {
  return {
    brokers: testBrokers(),
    clientId: 'e2e-probe8',
    fromBeginning: true,
    consumer: TEST_CONSUMER_TUNING,
    clientRetry: TEST_RETRY,
    retry: { attempts: 2, initialDelayMs: 50 },
    shutdownTimeoutMs: 10_000,
    commitIntervalMs: 200,
  };
}

const ROLES = 'probe8:roles';
const Roles = (...roles: string[]) => SetMetadata(ROLES, roles);
/** A custom parameter decorator reading the Kafka context, as a Nest developer writes one. */
const MessagePosition = createParamDecorator((_: unknown, context: ExecutionContext) => {
  const ctx = context.switchToRpc().getContext<KafkaGroupContext>();
  return `${ctx.topic}[${ctx.partition}]@${ctx.offset}`;
});

describe('outside-in probe 8', () => {
  const kafka = new KafkaTestClient();
  const apps: { close(): Promise<unknown> }[] = [];
  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
  });
  afterAll(() => kafka.closeAll());

  test('a hybrid app: useGlobalGuards (a Reflector role guard), useGlobalInterceptors and useGlobalFilters apply to @KafkaHandler methods; createParamDecorator and @Payload(field, ParseIntPipe) read the message', async () => {
    const groupId = uniqueName('hybrid');
    const topic = uniqueName('hybrid');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const trail: string[] = [];

    class RolesGuard implements CanActivate {
      constructor(private readonly reflector: Reflector) {}
      canActivate(context: ExecutionContext): boolean {
        const roles = this.reflector.getAllAndOverride<string[] | undefined>(ROLES, [
          context.getHandler(),
          context.getClass(),
        ]);
        const rpc = context.switchToRpc();
        const ctx = rpc.getContext<KafkaGroupContext>();
        const role = ctx.headers.role?.toString();
        trail.push(
          `guard ${ctx.offset} ${context.getType()} ${JSON.stringify(rpc.getData())} ${String(roles)} ${ctx instanceof KafkaGroupContext}`,
        );
        return roles === undefined || (role !== undefined && roles.includes(role));
      }
    }
    class TrailInterceptor implements NestInterceptor {
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        const offset = context.switchToRpc().getContext<KafkaGroupContext>().offset;
        return next.handle().pipe(tap(() => trail.push(`interceptor after ${offset}`)));
      }
    }
    @Catch()
    class RethrowFilter implements ExceptionFilter {
      catch(error: Error, host: ArgumentsHost): never {
        trail.push(
          `filter ${host.getType()} ${host.switchToRpc().getContext<KafkaGroupContext>().offset} ${error.constructor.name}`,
        );
        throw error;
      }
    }

    @Controller()
    @Roles('ops')
    class HybridController {
      @KafkaHandler('${TOPIC}')
      handle(
        @Payload('count', ParseIntPipe) count: number,
        @MessagePosition() position: string,
        @Ctx() ctx: KafkaGroupContext,
      ) {
        trail.push(`handler ${ctx.offset} ${typeof count} ${count} ${position}`);
      }
    }
    @Module({
      imports: [
        KafkaModule.forRoot(rootOptions()),
        KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } }),
      ],
      controllers: [HybridController],
    })
    class HybridModule {}

    const app = await NestFactory.create(HybridModule, { logger: [...LOGGER] });
    apps.push(app);
    app.useGlobalGuards(new RolesGuard(app.get(Reflector)));
    app.useGlobalInterceptors(new TrailInterceptor());
    app.useGlobalFilters(new RethrowFilter());
    app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
    await app.init();
    await app.startAllMicroservices();
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produce(topic, [
      { key: 'a', value: JSON.stringify({ count: '5' }), headers: { role: 'ops' } },
      { key: 'b', value: JSON.stringify({ count: '6' }) },
      { key: 'c', value: JSON.stringify({ count: 'many' }), headers: { role: 'ops' } },
    ]);
    await kafka.waitForCommittedToEnd(groupId, topic);

    expect(trail).toEqual([
      `guard 0 rpc {"count":"5"} ops true`,
      `handler 0 number 5 ${topic}[0]@0`,
      'interceptor after 0',
      `guard 1 rpc {"count":"6"} ops true`,
      'filter rpc 1 ForbiddenException',
      `guard 2 rpc {"count":"many"} ops true`,
      'filter rpc 2 BadRequestException',
    ]);
    const deadLetters = await kafka.readMessages(`${topic}-dlt`, 2);
    expect(
      deadLetters.map((m) => [
        String(m.key),
        String(m.headers?.[DLT_HEADERS.exceptionFqcn]),
        String(m.headers?.[DLT_HEADERS.exceptionMessage]),
      ]),
    ).toEqual([
      ['b', 'KafkaGuardRejectedError', expect.stringContaining(topic)],
      ['c', 'BadRequestException', 'Validation failed (numeric string is expected)'],
    ]);
  });

  test('a filter that swallows a handler error, a guard that throws, a feature module imported twice: what is retried, committed and dead-lettered', async () => {
    const groupId = uniqueName('filters');
    const [swallowed, guarded] = [uniqueName('swallowed'), uniqueName('guarded')];
    for (const topic of [swallowed, `${swallowed}-dlt`, guarded, `${guarded}-dlt`])
      await kafka.createTopic(topic, 1);
    const trail: string[] = [];

    @Catch()
    class SwallowFilter implements ExceptionFilter {
      catch(error: Error, host: ArgumentsHost): void {
        const ctx = host.switchToRpc().getContext<KafkaGroupContext>();
        trail.push(
          `swallow ${ctx.topic === swallowed ? 'swallowed' : 'guarded'} #${ctx.attempt} ${error.constructor.name}`,
        );
      }
    }
    class ThrowingGuard implements CanActivate {
      canActivate(): boolean {
        throw new UnauthorizedException('no token on the record');
      }
    }
    @Controller()
    @UseFilters(SwallowFilter)
    class FilteredController {
      @KafkaHandler('${SWALLOWED}')
      failing(@Ctx() ctx: KafkaGroupContext) {
        trail.push(`handler #${ctx.attempt}`);
        throw new RangeError('out of range');
      }

      @KafkaHandler('${GUARDED}')
      @UseGuards(ThrowingGuard)
      guardedHandler() {
        trail.push('guarded handler');
      }
    }
    @Module({
      imports: [
        KafkaModule.forFeature({ groupId, topicVariables: { SWALLOWED: swallowed, GUARDED: guarded } }),
      ],
      controllers: [FilteredController],
    })
    class FilteredModule {}
    @Module({ imports: [FilteredModule] })
    class OtherModule {}
    @Module({ imports: [KafkaModule.forRoot(rootOptions()), FilteredModule, OtherModule] })
    class AppModule {}

    const app = await NestFactory.create(AppModule, { logger: [...LOGGER] });
    apps.push(app);
    app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
    await app.init();
    await app.startAllMicroservices();
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produce(swallowed, [{ key: 'a', value: '{}' }]);
    await kafka.produce(guarded, [{ key: 'b', value: '{}' }]);
    await kafka.waitForCommittedToEnd(groupId, swallowed);
    await kafka.waitForCommittedToEnd(groupId, guarded);

    expect([...trail].sort()).toEqual(
      [
        'handler #1',
        'swallow swallowed #1 RangeError',
        'handler #2',
        'swallow swallowed #2 RangeError',
        'swallow guarded #1 UnauthorizedException',
        'swallow guarded #2 UnauthorizedException',
      ].sort(),
    );
    for (const [topic, fqcn] of [
      [swallowed, 'RangeError'],
      [guarded, 'UnauthorizedException'],
    ]) {
      const [deadLetter] = await kafka.readMessages(`${topic}-dlt`, 1);
      expect(String(deadLetter.headers?.[DLT_HEADERS.exceptionFqcn])).toBe(fqcn);
    }
  });

  test("Nest's documented RPC filter (extends BaseRpcExceptionFilter, returns super.catch) as APP_FILTER: the dead letter names the handler's error, not the filter's 'Internal server error'", async () => {
    const groupId = uniqueName('rpc-filter');
    const topic = uniqueName('rpc-filter');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    // BaseRpcExceptionFilter logs each error it does not know as an ERROR: the application chose that filter.
    expectErrorLines(/stock of sku-1 exhausted/);
    let caught = 0;

    @Catch()
    class AllExceptionsFilter extends BaseRpcExceptionFilter {
      override catch(exception: unknown, host: ArgumentsHost): Observable<unknown> {
        caught += 1;
        return super.catch(exception, host);
      }
    }
    @Controller()
    class StockController {
      @KafkaHandler('${TOPIC}')
      handle() {
        throw new RangeError('stock of sku-1 exhausted');
      }
    }
    @Module({
      imports: [
        KafkaModule.forRoot(rootOptions()),
        KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } }),
      ],
      controllers: [StockController],
      providers: [{ provide: APP_FILTER, useClass: AllExceptionsFilter }],
    })
    class StockModule {}

    const app = await NestFactory.create(StockModule, { logger: [...LOGGER] });
    apps.push(app);
    app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
    await app.init();
    await app.startAllMicroservices();
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produce(topic, [{ key: 'a', value: '{}' }]);
    await kafka.waitForCommittedToEnd(groupId, topic);

    expect(caught).toBe(2);
    const [deadLetter] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect([
      String(deadLetter.headers?.[DLT_HEADERS.exceptionFqcn]),
      String(deadLetter.headers?.[DLT_HEADERS.exceptionMessage]),
    ]).toEqual(['RangeError', 'stock of sku-1 exhausted']);
  });

  test("NestFactory.createMicroservice with the strategy from useFactory: its useGlobalInterceptors apply; a hybrid app connected without inheritAppConfig runs the app's global enhancers all the same", async () => {
    const topic = uniqueName('standalone');
    const [standaloneGroup, hybridGroup] = [uniqueName('standalone'), uniqueName('hybrid-own')];
    await kafka.createTopic(topic, 1);
    const trail: string[] = [];
    const tracing = (name: string): NestInterceptor => ({
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        const ctx = context.switchToRpc().getContext<KafkaGroupContext>();
        trail.push(`${name} ${ctx.groupId}`);
        return next.handle();
      },
    });
    @Controller()
    class StandaloneController {
      @KafkaHandler('${TOPIC}')
      handle(@Ctx() ctx: KafkaGroupContext) {
        trail.push(`handler ${ctx.groupId}`);
      }
    }
    const moduleFor = (groupId: string) => {
      @Module({
        imports: [
          KafkaModule.forRoot(rootOptions()),
          KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } }),
        ],
        controllers: [StandaloneController],
      })
      class StandaloneModule {}
      return StandaloneModule;
    };

    const standalone = await NestFactory.createMicroservice<AsyncMicroserviceOptions>(
      moduleFor(standaloneGroup),
      {
        inject: [KafkaGroupsServer],
        useFactory: (server: KafkaGroupsServer) => ({ strategy: server }),
        logger: [...LOGGER],
      },
    );
    apps.push(standalone);
    standalone.useGlobalInterceptors(tracing('microservice global'));
    await standalone.listen();

    const hybrid = await NestFactory.create(moduleFor(hybridGroup), { logger: [...LOGGER] });
    apps.push(hybrid);
    hybrid.useGlobalInterceptors(tracing('app global'));
    // Without inheritAppConfig: Nest's own transports would not run the app's global enhancers, the library's do.
    hybrid.connectMicroservice({ strategy: hybrid.get(KafkaGroupsServer) });
    await hybrid.init();
    await hybrid.startAllMicroservices();

    await kafka.waitForStableGroup(standaloneGroup, 1);
    await kafka.waitForStableGroup(hybridGroup, 1);
    await kafka.produce(topic, [{ key: 'a', value: '{}' }]);
    await kafka.waitForCommittedToEnd(standaloneGroup, topic);
    await kafka.waitForCommittedToEnd(hybridGroup, topic);
    expect([...trail].sort()).toEqual(
      [
        `microservice global ${standaloneGroup}`,
        `handler ${standaloneGroup}`,
        `app global ${hybridGroup}`,
        `handler ${hybridGroup}`,
      ].sort(),
    );
  });

  test('the testing module: overrideProvider of a handler dependency and of KafkaProducer, two apps in one process with one group each', async () => {
    const topic = uniqueName('testing');
    const groups = [uniqueName('testing-a'), uniqueName('testing-b')];
    await kafka.createTopic(topic, 1);
    const seen: string[] = [];
    const sent: string[] = [];

    @Injectable()
    class PriceService {
      price(): number {
        return 100;
      }
    }
    @Controller()
    class PricingController {
      constructor(
        private readonly prices: PriceService,
        private readonly producer: KafkaProducer,
      ) {}
      @KafkaHandler('${TOPIC}')
      async handle(@Payload() payload: { sku: string }, @Ctx() ctx: KafkaGroupContext) {
        seen.push(`${ctx.groupId} ${payload.sku} ${this.prices.price()}`);
        await this.producer.send(`${topic}-out`, { key: payload.sku, value: { price: this.prices.price() } });
      }
    }

    for (const [index, groupId] of groups.entries()) {
      @Module({
        imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
        controllers: [PricingController],
        providers: [PriceService],
      })
      class PricingModule {}

      const moduleRef = await Test.createTestingModule({
        imports: [KafkaModule.forRoot(rootOptions()), PricingModule],
      })
        .overrideProvider(PriceService)
        .useValue({ price: () => 7 + index })
        .overrideProvider(KafkaProducer)
        .useValue({
          send: async (to: string, record: { key: string; value: unknown }) => {
            sent.push(`${groupId} ${to} ${record.key} ${JSON.stringify(record.value)}`);
          },
        })
        .compile();
      const app = moduleRef.createNestApplication({ logger: [...LOGGER] });
      apps.push(app);
      app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
      await app.init();
      await app.startAllMicroservices();
    }
    for (const groupId of groups) await kafka.waitForStableGroup(groupId, 1);
    await kafka.produce(topic, [{ key: 's1', value: JSON.stringify({ sku: 's1' }) }]);
    for (const groupId of groups) await kafka.waitForCommittedToEnd(groupId, topic);

    expect([...seen].sort()).toEqual([`${groups[0]} s1 7`, `${groups[1]} s1 8`]);
    expect([...sent].sort()).toEqual([
      `${groups[0]} ${topic}-out s1 {"price":7}`,
      `${groups[1]} ${topic}-out s1 {"price":8}`,
    ]);
  });

  test('KafkaModule.forFeature in a module loaded by LazyModuleLoader: served when loaded before the groups start, refused naming the module after', async () => {
    const [earlyGroup, lateGroup] = [uniqueName('lazy-early'), uniqueName('lazy-late')];
    const topic = uniqueName('lazy');
    await kafka.createTopic(topic, 1);
    const seen: string[] = [];

    @Controller()
    class LazyController {
      @KafkaHandler('${TOPIC}')
      handle(@Ctx() ctx: KafkaGroupContext) {
        seen.push(`${ctx.groupId} ${ctx.offset}`);
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId: earlyGroup, topicVariables: { TOPIC: topic } })],
      controllers: [LazyController],
    })
    class EarlyLazyModule {}
    @Module({
      imports: [KafkaModule.forFeature({ groupId: lateGroup, topicVariables: { TOPIC: topic } })],
      controllers: [LazyController],
    })
    class LateLazyModule {}
    @Module({ imports: [KafkaModule.forRoot(rootOptions())] })
    class RootModule {}

    const app = await NestFactory.create(RootModule, { logger: [...LOGGER] });
    apps.push(app);
    app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
    await app.init();
    await app.get(LazyModuleLoader).load(() => EarlyLazyModule);
    await app.startAllMicroservices();
    await expect(app.get(LazyModuleLoader).load(() => LateLazyModule)).rejects.toThrow(
      `Module LateLazyModule imports KafkaModule.forFeature (group "${lateGroup}") but was loaded after the Kafka groups started (LazyModuleLoader): its @KafkaHandler methods would never be served; import it in a module loaded at start-up`,
    );
    await kafka.waitForStableGroup(earlyGroup, 1);
    await kafka.produce(topic, [{ key: 'a', value: '{}' }]);
    await kafka.waitForCommittedToEnd(earlyGroup, topic);
    expect(seen).toEqual([`${earlyGroup} 0`]);
  });

  test('forRootAsync and forFeatureAsync with ConfigService: a missing or malformed value is refused naming the setting', async () => {
    for (const [env, message] of [
      [{}, /forRoot\.brokers/],
      [{ PROBE8_BROKERS: 'localhost' }, /forRoot\.brokers.*"localhost"/],
    ] as const) {
      @Module({
        imports: [
          ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => env] }),
          KafkaModule.forRootAsync({
            imports: [ConfigModule],
            inject: [ConfigService],
            useFactory: (config: ConfigService) => ({
              brokers: config.get<string>('PROBE8_BROKERS')?.split(',') as string[],
              clientId: 'e2e-probe8',
            }),
          }),
        ],
      })
      class ConfiguredModule {}
      await expect(
        NestFactory.create(ConfiguredModule, { logger: false, abortOnError: false }),
      ).rejects.toThrow(message);
    }

    @Module({
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({})] }),
        KafkaModule.forRoot(rootOptions()),
        KafkaModule.forFeatureAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({ groupId: config.get<string>('PROBE8_GROUP') as string }),
        }),
      ],
    })
    class FeatureConfiguredModule {}
    await expect(
      NestFactory.create(FeatureConfiguredModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow('Invalid Kafka setting "forFeature.groupId": expected a non-empty consumer group id');
  });

  test('KafkaModule.forRoot imported twice (a shared module with other settings and the root module) is refused naming both modules, not one silently left unused', async () => {
    @Module({ imports: [KafkaModule.forRoot({ ...rootOptions(), clientId: 'shared' })] })
    class SharedKafkaModule {}
    @Module({ imports: [KafkaModule.forRoot(rootOptions()), SharedKafkaModule] })
    class TwiceRootModule {}
    await expect(NestFactory.create(TwiceRootModule, { logger: false, abortOnError: false })).rejects.toThrow(
      'Invalid Kafka setting "forRoot": imported 2 times (by TwiceRootModule, SharedKafkaModule); import KafkaModule.forRoot once, in the root module (feature modules take forFeature)',
    );
  });

  test("KafkaProducer from a hybrid app: typed payloads, keys and headers arrive as sent, null is a tombstone; undefined, a missing topic and a record over the broker's size are refused naming the topic", async () => {
    const topic = uniqueName('produce');
    await kafka.createTopic(topic, 2);

    // A short client retry budget: a send to a missing topic fails after it.
    @Module({
      imports: [
        KafkaModule.forRoot({
          ...rootOptions(),
          clientRetry: { retries: 1, initialRetryTime: 100, maxRetryTime: 200 },
        }),
      ],
    })
    class ProducerModule {}
    const app = await NestFactory.create(ProducerModule, { logger: [...LOGGER] });
    apps.push(app);
    await app.init();
    const producer = app.get(KafkaProducer);
    interface PriceChanged {
      sku: string;
      cents: number;
    }
    const payload: PriceChanged = { sku: 'p-1', cents: 1299 };
    await producer.send(topic, {
      key: 'p-1',
      value: payload,
      partition: 0,
      headers: { 'x-source': 'probe8' },
    });
    // A tombstone (a null value: what deletes the key on a compacted topic) and a value left undefined by mistake.
    await producer.send(topic, { key: 'p-2', value: null, partition: 0 });
    await expect(producer.send(topic, { key: 'p-3', value: undefined })).rejects.toThrow(
      `Could not produce to topic "${topic}": Invalid message without value for topic "${topic}": {"key":"p-3"}`,
    );
    const [message, tombstone] = await kafka.readMessages(topic, 2);
    expect([String(tombstone.key), tombstone.value]).toEqual(['p-2', null]);
    const missing = uniqueName('missing');
    await expect(producer.send(missing, { key: 'k', value: payload })).rejects.toThrow(
      `Could not produce to topic "${missing}"`,
    );
    await expect(producer.send(topic, { key: 'k', value: Buffer.alloc(2 * 1024 * 1024) })).rejects.toThrow(
      `Could not produce to topic "${topic}": The request included a message larger than the max message size the server will accept (topic "${topic}", partition 0)`,
    );
    expect([
      String(message.key),
      JSON.parse(String(message.value)),
      String(message.headers?.['x-source']),
    ]).toEqual(['p-1', payload, 'probe8']);
  });
});
