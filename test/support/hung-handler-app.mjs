/**
 * A small Nest application whose handler never returns for one record: the shutdown spec's child process. Group
 * GROUP_ID on TOPIC; the record with seq HANG_SEQ gets a promise that never settles and holds nothing (no timer), and
 * its handler ignores ctx.signal. BATCH=1 makes the handler a batch handler (the batch holding that seq hangs).
 * STOP=close: once the hang began the app calls `app.close()` itself and prints "CLOSED <ms>" and the resources the
 * event loop still waits on; STOP=signal: `enableShutdownHooks()`, the parent sends the signals.
 * Prints "HANDLING <seq> <partition>@<offset>" per record, "HUNG" when the hang begins.
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { KafkaGroupsServer, KafkaHandler, KafkaModule } from 'nest-kafka-groups';
import { TEST_CONSUMER_TUNING, TEST_RETRY, testBrokers } from 'nest-kafka-groups/testing';

const { TOPIC, GROUP_ID, HANG_SEQ, SHUTDOWN_TIMEOUT_MS, STOP, BATCH } = process.env;
const hangSeq = Number(HANG_SEQ);

process.on('unhandledRejection', (reason) => {
  process.stdout.write(`UNHANDLED REJECTION ${reason instanceof Error ? reason.stack : String(reason)}\n`);
});

let hung;
const hang = new Promise((resolve) => (hung = resolve));

function handleOne(payload, ctx) {
  process.stdout.write(`HANDLING ${payload.seq} ${ctx.partition}@${ctx.offset}\n`);
  if (payload.seq !== hangSeq) return undefined;
  process.stdout.write('HUNG\n');
  hung();
  return new Promise(() => undefined);
}

class HangingController {
  handle(payload, ctx) {
    if (BATCH !== '1') return handleOne(payload, ctx);
    const seqs = payload.map((item) => item.seq);
    process.stdout.write(`HANDLING BATCH ${seqs.join(',')} ${ctx.partition}@${ctx.firstOffset}\n`);
    if (!seqs.includes(hangSeq)) return undefined;
    process.stdout.write('HUNG\n');
    hung();
    return new Promise(() => undefined);
  }
}
const handle = Object.getOwnPropertyDescriptor(HangingController.prototype, 'handle');
Object.defineProperty(
  HangingController.prototype,
  'handle',
  Reflect.decorate(
    [KafkaHandler(TOPIC, BATCH === '1' ? { batch: true } : {})],
    HangingController.prototype,
    'handle',
    handle,
  ) ?? handle,
);
Controller()(HangingController);

class FeatureModule {}
Module({ imports: [KafkaModule.forFeature({ groupId: GROUP_ID })], controllers: [HangingController] })(
  FeatureModule,
);

class AppModule {}
Module({
  imports: [
    KafkaModule.forRoot({
      brokers: testBrokers(),
      clientId: 'hung-handler-app',
      fromBeginning: true,
      consumer: TEST_CONSUMER_TUNING,
      clientRetry: TEST_RETRY,
      shutdownTimeoutMs: Number(SHUTDOWN_TIMEOUT_MS),
      commitIntervalMs: 200,
    }),
    FeatureModule,
  ],
})(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['fatal', 'error', 'warn', 'log'] });
if (STOP === 'signal') app.enableShutdownHooks();
app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
await app.init();
await app.startAllMicroservices();
process.stdout.write('STARTED\n');
if (STOP === 'close') {
  await hang;
  const started = Date.now();
  await app.close();
  process.stdout.write(`CLOSED ${Date.now() - started}\n`);
  // What still holds the event loop: nothing of the library's may be left (the parent checks the exit).
  process.stdout.write(`RESOURCES ${JSON.stringify(process.getActiveResourcesInfo())}\n`);
}
