import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import {
  type ArgumentsHost,
  type CallHandler,
  Catch,
  type CanActivate,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  Injectable,
  type INestApplication,
  Module,
  type NestInterceptor,
  UseFilters,
  UseGuards,
  UseInterceptors,
  Scope,
} from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { EMPTY, type Observable, tap } from 'rxjs';
import {
  DLT_HEADERS,
  type KafkaGroupContext,
  KafkaHandler,
  KafkaMessageHeaders,
  KafkaKey,
  KafkaModule,
} from 'nest-kafka-groups';
import { KafkaTestClient, uniqueName } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

const seen: { raw?: Buffer; key?: string; trace?: unknown; headers?: unknown; intercepted?: boolean }[] = [];
const failures: number[] = [];
/** What the swallowing filter caught, in order. */
const filtered: string[] = [];

@Injectable()
class DenyHeaderGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToRpc().getContext<KafkaGroupContext>().headers.deny === undefined;
  }
}

@Injectable()
class MarkingInterceptor implements NestInterceptor {
  intercept(_: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(tap(() => (seen[seen.length - 1].intercepted = true)));
  }
}

/** A user's catch-all filter that swallows every error: the transport must still see a failure. */
@Catch()
class SwallowEverythingFilter implements ExceptionFilter {
  catch(error: unknown, _: ArgumentsHost): Observable<never> {
    filtered.push(`${(error as Error).constructor.name}: ${(error as Error).message}`);
    return EMPTY;
  }
}

class InventoryFull extends Error {}

@Controller()
@UseGuards(DenyHeaderGuard)
class PipelineController {
  @KafkaHandler('${RAW}')
  @UseInterceptors(MarkingInterceptor)
  raw(
    @Payload() raw: Buffer,
    @KafkaKey() key: string,
    @KafkaMessageHeaders('trace') trace: string,
    @KafkaMessageHeaders() headers: unknown,
  ) {
    seen.push({ raw, key, trace, headers });
  }

  @KafkaHandler('${SWALLOWED}', { retry: { attempts: 2, initialDelayMs: 50 } })
  @UseFilters(SwallowEverythingFilter)
  swallowed(@Payload() payload: { seq: number }) {
    failures.push(payload.seq);
    throw new InventoryFull(`no room for ${payload.seq}`);
  }
}

function pipelineModule(groupId: string, rawTopic: string, swallowedTopic: string) {
  @Module({
    imports: [
      KafkaModule.forFeature({ groupId, topicVariables: { RAW: rawTopic, SWALLOWED: swallowedTopic } }),
    ],
    controllers: [PipelineController],
    providers: [DenyHeaderGuard],
  })
  class PipelineModule {}
  return PipelineModule;
}

describe("handlers run through Nest's pipeline", () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];
  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
  });
  afterAll(() => kafka.closeAll());

  /** Key and UTF-8 headers of the first `count` dead letters on a topic. */
  async function deadLetters(topic: string, count: number) {
    return (await kafka.readMessages(topic, count)).map((message) => ({
      key: String(message.key),
      headers: Object.fromEntries(
        Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)]),
      ),
    }));
  }

  test('raw Buffer payloads, key and header parameters, guards, interceptors and a swallowing filter', async () => {
    const groupId = uniqueName('pipeline');
    const rawTopic = uniqueName('raw');
    const swallowedTopic = uniqueName('swallowed');
    for (const topic of [rawTopic, `${rawTopic}-dlt`, swallowedTopic, `${swallowedTopic}-dlt`])
      await kafka.createTopic(topic, 1);
    const { app } = await startTestApp([pipelineModule(groupId, rawTopic, swallowedTopic)]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);

    const producer = await kafka.producer();
    await producer.send({
      topic: rawTopic,
      messages: [
        { key: 'k1', value: Buffer.from([0xff, 0x00, 0x7b]), headers: { trace: 't-1' } },
        { key: 'k2', value: 'plain text', headers: { deny: 'yes' } },
      ],
    });
    await producer.send({
      topic: swallowedTopic,
      messages: [{ key: 's1', value: JSON.stringify({ seq: 7 }) }],
    });
    await kafka.waitForCommittedToEnd(groupId, rawTopic);
    await kafka.waitForCommittedToEnd(groupId, swallowedTopic);

    // Raw bytes untouched (not JSON), key and headers decoded, the method's interceptor applied.
    expect(seen).toHaveLength(1);
    expect(seen[0].raw).toEqual(Buffer.from([0xff, 0x00, 0x7b]));
    expect(seen[0].key).toBe('k1');
    expect(seen[0].trace).toBe('t-1');
    expect(seen[0].headers).toEqual({ trace: 't-1' });
    expect(seen[0].intercepted).toBe(true);

    // The guard's rejection is a non-retryable failure: dead-lettered, never handled.
    const [denied] = await deadLetters(`${rawTopic}-dlt`, 1);
    expect(denied.key).toBe('k2');
    expect(denied.headers[DLT_HEADERS.exceptionFqcn]).toBe('KafkaGuardRejectedError');

    // The filter swallowed the error, yet the transport retried (2 attempts) and dead-lettered the real error.
    expect(failures).toEqual([7, 7]);
    expect(filtered).toEqual(['InventoryFull: no room for 7', 'InventoryFull: no room for 7']);
    const [swallowed] = await deadLetters(`${swallowedTopic}-dlt`, 1);
    expect(swallowed.headers[DLT_HEADERS.exceptionFqcn]).toBe('InventoryFull');
    expect(swallowed.headers[DLT_HEADERS.exceptionMessage]).toBe('no room for 7');
  });

  test('a handler with nothing in its pipeline is called directly: payload, context, retries and dead letters', async () => {
    const groupId = uniqueName('direct');
    const topic = uniqueName('direct');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const calls: { payload: unknown; attempt: number; extra: unknown }[] = [];

    @Controller()
    class PlainController {
      @KafkaHandler('${TOPIC}', { retry: { attempts: 2, initialDelayMs: 50 } })
      handle(@Ctx() ctx: KafkaGroupContext, unused: unknown, @Payload() payload: { seq: number }) {
        calls.push({ payload, attempt: ctx.attempt, extra: unused });
        if (payload.seq === 1) throw new InventoryFull('seq 1 fails');
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [PlainController],
    })
    class PlainModule {}

    const { app } = await startTestApp([PlainModule], {}, [], { globalValidation: false });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 2, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(calls).toEqual([
      { payload: { seq: 0, key: 'k0' }, attempt: 1, extra: null },
      { payload: { seq: 1, key: 'k1' }, attempt: 1, extra: null },
      { payload: { seq: 1, key: 'k1' }, attempt: 2, extra: null },
    ]);
    const [dead] = await deadLetters(`${topic}-dlt`, 1);
    expect(dead.headers[DLT_HEADERS.exceptionFqcn]).toBe('InventoryFull');
  });

  test('a request-scoped controller is built per message and its pipeline still applies', async () => {
    const groupId = uniqueName('scoped');
    const topic = uniqueName('scoped');
    await kafka.createTopic(topic, 1);
    const instances = new Set<object>();
    const handled: number[] = [];

    @Controller({ scope: Scope.REQUEST })
    class ScopedController {
      @KafkaHandler('${TOPIC}')
      @UseInterceptors(MarkingInterceptor)
      handle(@Payload() payload: { seq: number }) {
        instances.add(this);
        handled.push(payload.seq);
        seen.push({});
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [ScopedController],
    })
    class ScopedModule {}

    seen.length = 0;
    const { app } = await startTestApp([ScopedModule]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 3, () => 'k');
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(handled).toEqual([0, 1, 2]);
    expect(instances.size).toBe(3);
    expect(seen.every((s) => s.intercepted)).toBe(true);
  });

  test('start-up errors: a handler in a module without a group, and a handler on a provider', async () => {
    @Controller()
    class Orphan {
      @KafkaHandler('orphan-topic')
      handle() {}
    }
    @Module({ controllers: [Orphan] })
    class OrphanModule {}
    await expect(startTestApp([OrphanModule])).rejects.toThrow(
      /Orphan\.handle handles topic "orphan-topic" but module OrphanModule declares no consumer group/,
    );

    @Injectable()
    class MisplacedService {
      @KafkaHandler('misplaced-topic')
      handle() {}
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId: uniqueName('misplaced') })],
      providers: [MisplacedService],
    })
    class MisplacedModule {}
    await expect(startTestApp([MisplacedModule])).rejects.toThrow(
      /@KafkaHandler on MisplacedService\.handle, a provider of module MisplacedModule/,
    );
  });
});
