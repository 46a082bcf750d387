import 'reflect-metadata';
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import {
  Controller,
  Inject,
  Injectable,
  type INestApplication,
  Module,
  Scope,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CONTEXT, Ctx, Payload } from '@nestjs/microservices';
import {
  DLT_HEADERS,
  type KafkaGroupContext,
  KafkaGroupsServer,
  KafkaHandler,
  KafkaModule,
} from 'nest-kafka-groups';
import {
  testBrokers,
  TEST_CONSUMER_TUNING,
  TEST_RETRY,
  KafkaTestClient,
  uniqueName,
} from 'nest-kafka-groups/testing';

/** Finding 7 of issue 9: a pipeline that rejects must be a failure of that message, with or without Nest's hooks. */

const handled: number[] = [];
let hookRuns = 0;

class SeqZeroUnbuildable extends Error {}

/** Request-scoped: built per message from the message itself; it cannot be built for seq 0. */
@Injectable({ scope: Scope.REQUEST })
class PerMessageService {
  constructor(@Inject(CONTEXT) request: { data: { seq: number } }) {
    if (request.data.seq === 0) throw new SeqZeroUnbuildable('PerMessageService cannot be built for seq 0');
  }
}

@Controller()
class PlainController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: { seq: number }) {
    handled.push(payload.seq);
  }
}

@Controller()
class RequestScopedController {
  constructor(private readonly service: PerMessageService) {}

  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: { seq: number }, @Ctx() _ctx: KafkaGroupContext) {
    void this.service;
    handled.push(payload.seq);
  }
}

class StartHookFailed extends Error {}

async function startApp(
  groupId: string,
  topic: string,
  hooks: boolean,
  controller: Type = RequestScopedController,
  startHook: (context: KafkaGroupContext) => void = () => undefined,
): Promise<INestApplication> {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
    controllers: [controller],
    providers: [PerMessageService],
  })
  class Feature {}

  @Module({
    imports: [
      KafkaModule.forRoot({
        brokers: testBrokers(),
        clientId: 'e2e-rejections',
        fromBeginning: true,
        consumer: TEST_CONSUMER_TUNING,
        clientRetry: TEST_RETRY,
        retry: { attempts: 2, initialDelayMs: 100, multiplier: 1, maxDelayMs: 100 },
        shutdownTimeoutMs: 10_000,
      }),
      Feature,
    ],
  })
  class AppModule {}

  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  const server = app.get(KafkaGroupsServer);
  if (hooks) {
    server.setOnProcessingStartHook((_transport, context, done) => {
      hookRuns++;
      startHook(context as KafkaGroupContext);
      return done();
    });
    server.setOnProcessingEndHook(() => undefined);
  }
  app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
  await app.init();
  await app.startAllMicroservices();
  return app;
}

describe('pipeline rejections', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    handled.length = 0;
    hookRuns = 0;
  });
  afterAll(() => kafka.closeAll());

  test.each([
    ['without processing hooks', false],
    ['with processing hooks', true],
  ])('a request-scoped controller that cannot be built fails its message only (%s)', async (_, hooks) => {
    const topic = uniqueName('resolve-throws');
    const groupId = uniqueName('resolve-throws');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const app = await startApp(groupId, topic, hooks);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 3, (i) => `k${i}`);

    // Retried (attempts: 2), dead-lettered with the resolve error, and the messages after it handled.
    await kafka.waitForCommittedToEnd(groupId, topic, 20_000);
    expect(handled).toEqual([1, 2]);
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.key!.toString()).toBe('k0');
    expect(dead.headers![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('SeqZeroUnbuildable');
    // Handled as a failure of that message: the consumer never crashed or restarted its fetch.
    const member = app.get(KafkaGroupsServer).groups[0].members[0];
    expect(member.counts).toEqual({ processed: 2, failed: 2, deadLettered: 1 });
    expect(member.state).toBe('joined');
    expect(member.lastError).toBeUndefined();
    if (hooks) expect(hookRuns).toBe(4);
  });

  test('a processing start hook that throws fails that message; the batch does not wait forever', async () => {
    const topic = uniqueName('hook-throws');
    const groupId = uniqueName('hook-throws');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const app = await startApp(groupId, topic, true, PlainController, (context) => {
      if (context.offset === '0') throw new StartHookFailed('tracing hook failed for offset 0');
    });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 3, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupId, topic, 20_000);
    expect(handled).toEqual([1, 2]);
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.headers![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('StartHookFailed');
    expect(app.get(KafkaGroupsServer).groups[0].members[0].lastError).toBeUndefined();
  });
});
