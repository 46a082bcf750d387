import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import {
  type CallHandler,
  Controller,
  type ExecutionContext,
  Injectable,
  type INestApplication,
  Module,
  type NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { EMPTY, Observable, of, throwError } from 'rxjs';
import { DLT_HEADERS, type KafkaGroupContext, KafkaHandler, KafkaModule } from 'nest-kafka-groups';
import { KafkaTestClient, uniqueName } from 'nest-kafka-groups/testing';
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
      const withoutReason = [
        'KafkaHandlerFailedWithoutReasonError',
        `The handler of topic "${topic}" partition 0 in group "${groupId}" failed without a reason (it threw or rejected with undefined)`,
      ];
      expect(
        deadLetters.map((message) => [
          String(message.key),
          String(message.headers?.[DLT_HEADERS.exceptionFqcn]),
          String(message.headers?.[DLT_HEADERS.exceptionMessage]),
        ]),
      ).toEqual([
        ['throw undefined', ...withoutReason],
        ['throw null', 'Error', 'null'],
        ['throw a string', 'Error', 'out of stock'],
        ['throw a plain object', 'Error', 'plain object'],
        ['reject with undefined', ...withoutReason],
        ['an Observable erroring with undefined', ...withoutReason],
        ['an Observable erroring after values', 'Error', 'after one value'],
      ]);
    }
  });
});
