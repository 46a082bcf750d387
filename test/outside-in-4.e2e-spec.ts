import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import {
  type ArgumentMetadata,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  Inject,
  Injectable,
  type INestApplication,
  Module,
  type NestInterceptor,
  type PipeTransform,
  Scope,
  UseInterceptors,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { NestFactory } from '@nestjs/core';
import {
  CONTEXT,
  Ctx,
  EventPattern,
  type KafkaContext,
  Payload,
  type RequestContext,
  RpcException,
  Transport,
} from '@nestjs/microservices';
import { logLevel } from 'kafkajs';
import { IsInt } from 'class-validator';
import { catchError, EMPTY, Observable, of, tap, throwError } from 'rxjs';
import {
  DLT_HEADERS,
  type KafkaGroupContext,
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
  waitFor,
} from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

/**
 * Outside-in probe 4: what a NestJS user writes and what a Kafka operator does, against a real broker, where no
 * earlier spec looked (docs/RELIABILITY.md, findings 18 on).
 */

/** What a handler of the probe does with one record, by the record's `kind`; `subscribed` marks a cold Observable run. */
const OUTCOMES: Record<string, (subscribed: () => void) => unknown> = {
  // Values JavaScript lets a handler fail with that are not Error instances.
  'throw undefined': () => {
    throw undefined;
  },
  'throw null': () => {
    throw null;
  },
  'throw a string': () => {
    throw 'out of stock';
  },
  'throw a plain object': () => {
    throw { code: 42, message: 'plain object' };
  },
  'reject with undefined': () => Promise.reject(undefined as unknown as Error),
  'an Observable erroring with undefined': () => throwError(() => undefined),
  'an Observable erroring after values': () =>
    new Observable((subscriber) => {
      subscriber.next(1);
      subscriber.error(new Error('after one value'));
    }),
  // Successes.
  'an Observable of three values': () => of(1, 2, 3),
  'a cold Observable': (subscribed) =>
    new Observable((subscriber) => {
      subscribed();
      subscriber.next('written');
      subscriber.complete();
    }),
  'an empty Observable': () => EMPTY,
  'return a value': () => 'done',
};
const FAILING = Object.keys(OUTCOMES).slice(0, 7);

@Injectable()
class PassThroughInterceptor implements NestInterceptor {
  intercept(_: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

describe('outside-in probe 4', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];
  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
  });
  afterAll(() => kafka.closeAll());

  test('handlers failing with values that are not Errors (undefined, null, a string, an object) or with Observables are retried and dead-lettered; Observables that complete succeed', async () => {
    const groupId = uniqueName('non-error');
    // One topic for the pipes-only path (the global ValidationPipe), one for Nest's full pipeline (an interceptor).
    const piped = uniqueName('non-error-piped');
    const intercepted = uniqueName('non-error-intercepted');
    for (const topic of [piped, `${piped}-dlt`, intercepted, `${intercepted}-dlt`])
      await kafka.createTopic(topic, 1);
    const calls: string[] = [];

    @Controller()
    class NonErrorController {
      @KafkaHandler('${PIPED}')
      piped(@Payload() payload: { kind: string }, @Ctx() ctx: KafkaGroupContext) {
        calls.push(`piped ${payload.kind} #${ctx.attempt}`);
        return OUTCOMES[payload.kind](() => calls.push(`piped ${payload.kind} subscribed`));
      }

      @KafkaHandler('${INTERCEPTED}')
      @UseInterceptors(PassThroughInterceptor)
      intercepted(@Payload() payload: { kind: string }, @Ctx() ctx: KafkaGroupContext) {
        calls.push(`intercepted ${payload.kind} #${ctx.attempt}`);
        return OUTCOMES[payload.kind](() => calls.push(`intercepted ${payload.kind} subscribed`));
      }
    }
    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId,
          topicVariables: { PIPED: piped, INTERCEPTED: intercepted },
          retry: { attempts: 2, initialDelayMs: 50 },
        }),
      ],
      controllers: [NonErrorController],
    })
    class NonErrorModule {}

    const { app } = await startTestApp([NonErrorModule]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    const records = Object.keys(OUTCOMES).map((kind) => ({ key: kind, value: JSON.stringify({ kind }) }));
    await kafka.produce(piped, records);
    await kafka.produce(intercepted, records);
    await kafka.waitForCommittedToEnd(groupId, piped);
    await kafka.waitForCommittedToEnd(groupId, intercepted);

    const expected = ['piped', 'intercepted'].flatMap((path) => [
      ...Object.keys(OUTCOMES).flatMap((kind) =>
        FAILING.includes(kind) ? [`${path} ${kind} #1`, `${path} ${kind} #2`] : [`${path} ${kind} #1`],
      ),
      `${path} a cold Observable subscribed`,
    ]);
    expect([...calls].sort()).toEqual(expected.sort());
    for (const path of ['piped', 'intercepted']) {
      const deadLetters = await kafka.readMessages(
        `${path === 'piped' ? piped : intercepted}-dlt`,
        FAILING.length,
      );
      const topic = path === 'piped' ? piped : intercepted;
      // The message names the record: its offset is the one the dead letter's original-offset header carries.
      const offsetOf = new Map(
        deadLetters.map((message) => [
          String(message.key),
          (message.headers?.[DLT_HEADERS.originalOffset] as Buffer).readBigInt64BE().toString(),
        ]),
      );
      const withoutReason = (key: string) => [
        key,
        'KafkaHandlerFailedWithoutReasonError',
        `The handler of topic "${topic}" partition 0 at offset ${offsetOf.get(key)} in group "${groupId}" failed without a reason (it threw or rejected with undefined)`,
      ];
      expect(
        deadLetters.map((message) => [
          String(message.key),
          String(message.headers?.[DLT_HEADERS.exceptionFqcn]),
          String(message.headers?.[DLT_HEADERS.exceptionMessage]),
        ]),
      ).toEqual([
        withoutReason('throw undefined'),
        ['throw null', 'Error', 'null'],
        ['throw a string', 'Error', 'out of stock'],
        ['throw a plain object', 'Error', 'plain object'],
        withoutReason('reject with undefined'),
        withoutReason('an Observable erroring with undefined'),
        ['an Observable erroring after values', 'Error', 'after one value'],
      ]);
    }
  });

  test('global enhancers from providers (APP_GUARD, APP_INTERCEPTOR, APP_PIPE, APP_FILTER), a request-scoped APP_INTERCEPTOR among them, apply to every message', async () => {
    const groupId = uniqueName('app-enhancers');
    const topic = uniqueName('app-enhancers');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const trail: string[] = [];
    const scopedInstances = new Set<object>();

    @Injectable()
    class DenyHeaderGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        const ctx = context.switchToRpc().getContext<KafkaGroupContext>();
        trail.push(`guard ${ctx.offset}`);
        return ctx.headers.deny === undefined;
      }
    }
    @Injectable()
    class TrailInterceptor implements NestInterceptor {
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        const offset = context.switchToRpc().getContext<KafkaGroupContext>().offset;
        trail.push(`interceptor ${offset}`);
        return next.handle().pipe(tap(() => trail.push(`interceptor after ${offset}`)));
      }
    }
    @Injectable({ scope: Scope.REQUEST })
    class ScopedInterceptor implements NestInterceptor {
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        scopedInstances.add(this);
        trail.push(`scoped ${context.switchToRpc().getContext<KafkaGroupContext>().offset}`);
        return next.handle();
      }
    }
    @Injectable()
    class StampPipe implements PipeTransform {
      transform(value: unknown, metadata: ArgumentMetadata): unknown {
        return metadata.type === 'body' ? { ...(value as object), stamped: true } : value;
      }
    }
    @Catch()
    class TrailFilter implements ExceptionFilter {
      catch(error: Error, host: ArgumentsHost): void {
        trail.push(
          `filter ${host.switchToRpc().getContext<KafkaGroupContext>().offset} ${error.constructor.name}`,
        );
        throw error;
      }
    }

    @Controller()
    class EnhancedController {
      @KafkaHandler('${TOPIC}', { retry: { attempts: 1 } })
      handle(@Payload() payload: { seq: number; stamped?: boolean }, @Ctx() ctx: KafkaGroupContext) {
        trail.push(`handler ${ctx.offset} ${payload.stamped === true ? 'stamped' : 'unstamped'}`);
        if (payload.seq === 2) throw new RangeError('seq 2 fails');
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [EnhancedController],
      providers: [
        { provide: APP_GUARD, useClass: DenyHeaderGuard },
        { provide: APP_INTERCEPTOR, useClass: TrailInterceptor },
        { provide: APP_INTERCEPTOR, useClass: ScopedInterceptor },
        { provide: APP_PIPE, useClass: StampPipe },
        { provide: APP_FILTER, useClass: TrailFilter },
      ],
    })
    class EnhancedModule {}

    const { app } = await startTestApp([EnhancedModule], {}, [], { globalValidation: false });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produce(topic, [
      { key: 'a', value: JSON.stringify({ seq: 0 }) },
      { key: 'b', value: JSON.stringify({ seq: 1 }), headers: { deny: 'yes' } },
      { key: 'c', value: JSON.stringify({ seq: 2 }) },
    ]);
    await kafka.waitForCommittedToEnd(groupId, topic);

    expect(trail).toEqual([
      'guard 0',
      'interceptor 0',
      'scoped 0',
      'handler 0 stamped',
      'interceptor after 0',
      'guard 1',
      'filter 1 ForbiddenException',
      'guard 2',
      'interceptor 2',
      'scoped 2',
      'handler 2 stamped',
      'filter 2 RangeError',
    ]);
    expect(scopedInstances.size).toBe(2);
    const deadLetters = await kafka.readMessages(`${topic}-dlt`, 2);
    expect(deadLetters.map((m) => [String(m.key), String(m.headers?.[DLT_HEADERS.exceptionFqcn])])).toEqual([
      ['b', 'KafkaGuardRejectedError'],
      ['c', 'RangeError'],
    ]);
  });

  test("a request-scoped provider injecting CONTEXT gets Nest's RequestContext per message: getPattern() the topic, getData() the payload, getContext() the message's context", async () => {
    const groupId = uniqueName('request-context');
    const topic = uniqueName('request-context');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const seen: unknown[] = [];

    @Injectable({ scope: Scope.REQUEST })
    class MessageScope {
      constructor(@Inject(CONTEXT) readonly request: RequestContext<{ seq: number }, KafkaGroupContext>) {}
      describe(): unknown {
        return {
          pattern: this.request.getPattern(),
          data: this.request.getData(),
          offset: this.request.getContext().offset,
          sameContext: this.request.context === this.request.getContext(),
        };
      }
    }
    @Controller()
    class ScopedDependencyController {
      constructor(private readonly scope: MessageScope) {}
      @KafkaHandler('${TOPIC}', { retry: { attempts: 1 } })
      handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext) {
        seen.push({
          ...(this.scope.describe() as object),
          handlerPayload: payload,
          isCtx: this.scope.request.context === ctx,
        });
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [ScopedDependencyController],
      providers: [MessageScope],
    })
    class ScopedDependencyModule {}

    const { app } = await startTestApp([ScopedDependencyModule]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produce(
      topic,
      [0, 1].map((seq) => ({ key: `k${seq}`, value: JSON.stringify({ seq }) })),
    );
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(seen).toEqual(
      [0, 1].map((seq) => ({
        pattern: topic,
        data: { seq },
        offset: String(seq),
        sameContext: true,
        handlerPayload: { seq },
        isCtx: true,
      })),
    );
  });

  test("a rolling migration from Nest's built-in Kafka transport and back: ServerKafka and library members share the group, each leading once; every record once", async () => {
    const groupId = uniqueName('migration');
    const topic = uniqueName('migration');
    await kafka.createTopic(topic, 4);
    const handled: { by: string; partition: number; seq: number }[] = [];

    /** The old service: Nest's own Kafka transport, its group id unsuffixed. */
    async function startBuiltin(name: string): Promise<INestApplication> {
      @Controller()
      class BuiltinController {
        @EventPattern<string>(topic)
        onRecord(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaContext) {
          handled.push({ by: name, partition: ctx.getPartition(), seq: payload.seq });
        }
      }
      @Module({ controllers: [BuiltinController] })
      class BuiltinModule {}
      const builtin = await NestFactory.create(BuiltinModule, { logger: ['error', 'warn'] });
      apps.push(builtin);
      builtin.connectMicroservice({
        transport: Transport.KAFKA,
        options: {
          postfixId: '',
          // The old service's kafkajs logs its rebalance answers as ERRORs, which are not the library's.
          client: { clientId: name, brokers: testBrokers(), retry: TEST_RETRY, logLevel: logLevel.NOTHING },
          consumer: { groupId, allowAutoTopicCreation: false, ...TEST_CONSUMER_TUNING, retry: TEST_RETRY },
          subscribe: { fromBeginning: true },
        },
      });
      await builtin.init();
      await builtin.startAllMicroservices();
      return builtin;
    }
    const partitionsOf = (by: string, fromSeq: number) => [
      ...new Set(handled.filter((h) => h.by === by && h.seq >= fromSeq).map((h) => h.partition)),
    ];
    async function produceAndDrain(from: number, count: number) {
      await kafka.produceKeyed(
        topic,
        count,
        (i) => `k${from + i}`,
        (i) => ({ seq: from + i }),
      );
      await kafka.waitForCommittedToEnd(groupId, topic);
      await waitFor(`${from + count} records handled`, 10_000, () => handled.length >= from + count);
    }

    // The old service leads (kafkajs's own RoundRobinAssigner deals), the library's member joins.
    const old = await startBuiltin('builtin-old');
    await kafka.waitForStableGroup(groupId, 1);
    @Controller()
    class LibraryController {
      @KafkaHandler('${TOPIC}')
      onRecord(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext) {
        handled.push({ by: 'library', partition: ctx.partition, seq: payload.seq });
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [LibraryController],
    })
    class LibraryModule {}
    const { app } = await startTestApp([LibraryModule]);
    apps.push(app);
    // The only protocol both advertise: kafkajs's round robin, under its name.
    expect((await kafka.waitForStableGroup(groupId, 2)).protocol).toBe('RoundRobinAssigner');
    await produceAndDrain(0, 100);
    expect(partitionsOf('builtin-old', 0)).toHaveLength(2);
    expect(partitionsOf('library', 0)).toHaveLength(2);

    // The old service stops: the library's member takes its partitions from their commits.
    await old.close();
    apps.splice(apps.indexOf(old), 1);
    await kafka.waitForStableGroup(groupId, 1);
    await produceAndDrain(100, 100);
    expect(partitionsOf('library', 100)).toHaveLength(4);

    // Rolled back: an old-service member joins the library's member, which leads and deals now.
    await startBuiltin('builtin-again');
    expect((await kafka.waitForStableGroup(groupId, 2)).protocol).toBe('RoundRobinAssigner');
    await produceAndDrain(200, 100);
    expect(partitionsOf('builtin-again', 200)).toHaveLength(2);
    expect(partitionsOf('library', 200)).toHaveLength(2);
    expect(handled.map((h) => h.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  test('two modules naming one group id are one group; a rolling deploy that adds a topic to it: old and new members subscribe differently, each topic is dealt to its subscribers only, every record once', async () => {
    const groupId = uniqueName('shared-group');
    const orders = uniqueName('shared-orders');
    const refunds = uniqueName('shared-refunds');
    await kafka.createTopic(orders, 2);
    await kafka.createTopic(refunds, 2);
    const handled: { app: string; topic: string; partition: number; seq: number }[] = [];

    function modules(app: string, withRefunds: boolean) {
      @Controller()
      class OrdersController {
        @KafkaHandler('${ORDERS}')
        onOrder(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext) {
          handled.push({ app, topic: ctx.topic, partition: ctx.partition, seq: payload.seq });
        }
      }
      @Module({
        imports: [KafkaModule.forFeature({ groupId, topicVariables: { ORDERS: orders } })],
        controllers: [OrdersController],
      })
      class OrdersModule {}
      @Controller()
      class RefundsController {
        @KafkaHandler('${REFUNDS}')
        onRefund(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext) {
          handled.push({ app, topic: ctx.topic, partition: ctx.partition, seq: payload.seq });
        }
      }
      @Module({
        imports: [KafkaModule.forFeature({ groupId, topicVariables: { REFUNDS: refunds } })],
        controllers: [RefundsController],
      })
      class RefundsModule {}
      return withRefunds ? [OrdersModule, RefundsModule] : [OrdersModule];
    }

    const old = await startTestApp(modules('old', false));
    apps.push(old.app);
    await kafka.waitForStableGroup(groupId, 1);
    const next = await startTestApp(modules('new', true));
    apps.push(next.app);
    // One member per process: the two modules are one group.
    await kafka.waitForStableGroup(groupId, 2);
    expect(next.server.groups.map((group) => group.groupId)).toEqual([groupId]);

    const produce = async (from: number) => {
      await kafka.produceKeyed(
        orders,
        40,
        (i) => `o${from + i}`,
        (i) => ({ seq: from + i }),
      );
      await kafka.produceKeyed(
        refunds,
        40,
        (i) => `r${from + i}`,
        (i) => ({ seq: from + i }),
      );
      await kafka.waitForCommittedToEnd(groupId, orders);
      await kafka.waitForCommittedToEnd(groupId, refunds);
    };
    await produce(0);
    const heldBy = (app: string, topic: string) =>
      [...new Set(handled.filter((h) => h.app === app && h.topic === topic).map((h) => h.partition))].sort();
    expect(heldBy('old', refunds)).toEqual([]);
    expect(heldBy('new', refunds)).toEqual([0, 1]);
    expect([...heldBy('old', orders), ...heldBy('new', orders)].sort()).toEqual([0, 1]);

    // The old version goes: the new one takes its orders partitions.
    await old.app.close();
    apps.splice(apps.indexOf(old.app), 1);
    await kafka.waitForStableGroup(groupId, 1);
    await produce(40);
    for (const topic of [orders, refunds]) {
      expect(
        handled
          .filter((h) => h.topic === topic)
          .map((h) => h.seq)
          .sort((a, b) => a - b),
      ).toEqual(Array.from({ length: 80 }, (_, i) => i));
    }
  });

  test("records above the broker's default size on a topic whose max.message.bytes was raised: handled, and a failing one dead-lettered", async () => {
    const groupId = uniqueName('large');
    const topic = uniqueName('large');
    const sixMiB = String(6 * 1024 * 1024);
    await kafka.createTopic(topic, 1, [{ name: 'max.message.bytes', value: sixMiB }]);
    const handled: { seq: number; bytes: number; attempt: number }[] = [];

    @Controller()
    class LargeController {
      @KafkaHandler('${TOPIC}', { retry: { attempts: 2, initialDelayMs: 50 } })
      handle(@Payload() payload: { seq: number; pad: string }, @Ctx() ctx: KafkaGroupContext) {
        handled.push({ seq: payload.seq, bytes: payload.pad.length, attempt: ctx.attempt });
        if (payload.seq === 1) throw new Error('seq 1 fails');
      }
    }
    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId,
          topicVariables: { TOPIC: topic },
          limits: { maxValueBytes: 6 * 1024 * 1024 },
        }),
      ],
      controllers: [LargeController],
    })
    class LargeModule {}
    const { app } = await startTestApp([LargeModule]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    const pad = 'x'.repeat(3 * 1024 * 1024);
    for (const seq of [0, 1, 2]) {
      await kafka.produce(topic, [
        { key: `k${seq}`, value: JSON.stringify({ seq, pad: seq === 2 ? 'small' : pad }) },
      ]);
    }
    await kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    expect(handled).toEqual([
      { seq: 0, bytes: pad.length, attempt: 1 },
      { seq: 1, bytes: pad.length, attempt: 1 },
      { seq: 1, bytes: pad.length, attempt: 2 },
      { seq: 2, bytes: 5, attempt: 1 },
    ]);
    // The dead-letter topic the library created takes the source topic's size (README, Topics): the record whole.
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.key?.toString()).toBe('k1');
    expect(dead.value?.toString()).toBe(JSON.stringify({ seq: 1, pad }));
  }, 90_000);

  test("an interceptor mapping errors to RpcException (catchError, as in Nest's docs): the transport classifies and dead-letters the mapped error", async () => {
    const groupId = uniqueName('mapping');
    const topic = uniqueName('mapping');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const calls: string[] = [];

    class SeqDto {
      @IsInt() seq!: number;
    }
    @Injectable()
    class MappingInterceptor implements NestInterceptor {
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        const ctx = context.switchToRpc().getContext<KafkaGroupContext>();
        calls.push(`${ctx.message.key?.toString()} #${ctx.attempt}`);
        return next
          .handle()
          .pipe(catchError((error: Error) => throwError(() => new RpcException(error.message))));
      }
    }
    @Controller()
    class MappedController {
      @KafkaHandler('${TOPIC}', { retry: { attempts: 3, initialDelayMs: 50 } })
      @UseInterceptors(MappingInterceptor)
      handle(@Payload() payload: SeqDto) {
        throw new Error(`seq ${payload.seq} fails`);
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [MappedController],
    })
    class MappedModule {}
    const { app } = await startTestApp([MappedModule]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produce(topic, [
      { key: 'invalid', value: JSON.stringify({ seq: 'x' }) },
      { key: 'failing', value: JSON.stringify({ seq: 1 }) },
    ]);
    await kafka.waitForCommittedToEnd(groupId, topic);
    // The ValidationPipe's BadRequestException, mapped, is retried like any error and named as the mapped one, its
    // reasons gone (README: map errors in an exception filter, which the transport sees past).
    expect(calls).toEqual([
      'invalid #1',
      'invalid #2',
      'invalid #3',
      'failing #1',
      'failing #2',
      'failing #3',
    ]);
    const deadLetters = await kafka.readMessages(`${topic}-dlt`, 2);
    expect(
      deadLetters.map((m) => [
        String(m.key),
        String(m.headers?.[DLT_HEADERS.exceptionFqcn]),
        String(m.headers?.[DLT_HEADERS.exceptionMessage]),
      ]),
    ).toEqual([
      ['invalid', 'RpcException', 'Bad Request Exception'],
      ['failing', 'RpcException', 'seq 1 fails'],
    ]);
  });

  test("one application with Nest's own Kafka transport beside the library: each server serves its own handlers only; consume, then produce with KafkaProducer, across app.close()", async () => {
    const groupId = uniqueName('hybrid');
    const legacyTopic = uniqueName('hybrid-legacy');
    const topic = uniqueName('hybrid-in');
    const out = uniqueName('hybrid-out');
    await kafka.createTopic(legacyTopic, 1);
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(out, 1);
    const handled: string[] = [];
    let started!: () => void;
    const handlerStarted = new Promise<void>((resolve) => (started = resolve));

    @Controller()
    class HybridController {
      constructor(private readonly producer: KafkaProducer) {}

      // No transport named: Nest registers it with every server of the application.
      @EventPattern<string>(legacyTopic)
      onLegacy(@Payload() payload: { seq: number }) {
        handled.push(`legacy ${payload.seq}`);
      }

      @KafkaHandler('${TOPIC}')
      async onRecord(@Payload() payload: { seq: number }) {
        handled.push(`library ${payload.seq}`);
        started();
        // Still working when the application is closed: the consume-then-produce must complete.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        await this.producer.send(out, { key: `k${payload.seq}`, value: { seq: payload.seq } });
        handled.push(`produced ${payload.seq}`);
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [HybridController],
    })
    class HybridModule {}
    @Module({
      imports: [
        KafkaModule.forRoot({
          brokers: testBrokers(),
          clientId: 'hybrid',
          fromBeginning: true,
          consumer: TEST_CONSUMER_TUNING,
          clientRetry: TEST_RETRY,
          commitIntervalMs: 200,
          shutdownTimeoutMs: 10_000,
        }),
        HybridModule,
      ],
    })
    class HybridAppModule {}
    const app = await NestFactory.create(HybridAppModule, { logger: ['error', 'warn'] });
    let open = true;
    try {
      app.connectMicroservice({
        transport: Transport.KAFKA,
        options: {
          postfixId: '',
          client: {
            clientId: 'hybrid-builtin',
            brokers: testBrokers(),
            retry: TEST_RETRY,
            logLevel: logLevel.NOTHING,
          },
          consumer: { groupId: `${groupId}-builtin`, allowAutoTopicCreation: false, ...TEST_CONSUMER_TUNING },
          subscribe: { fromBeginning: true },
        },
      });
      app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
      await app.init();
      await app.startAllMicroservices();
      await kafka.waitForStableGroup(groupId, 1);
      await kafka.waitForStableGroup(`${groupId}-builtin`, 1);

      await kafka.produce(legacyTopic, [{ value: JSON.stringify({ seq: 0 }) }]);
      await waitFor('the legacy record handled', 15_000, () => handled.includes('legacy 0'));
      await kafka.produce(topic, [{ value: JSON.stringify({ seq: 1 }) }]);
      await handlerStarted;
      await app.close();
      open = false;
    } finally {
      if (open) await app.close();
    }
    expect(handled).toEqual(['legacy 0', 'library 1', 'produced 1']);
    expect((await kafka.readMessages(out, 1)).map((m) => String(m.value))).toEqual(['{"seq":1}']);
    expect(await kafka.offsets(groupId, topic)).toEqual([{ partition: 0, end: 1, committed: 1 }]);
  });
});
