/**
 * System d: this project. A feature module with its own consumer group, a controller with `@KafkaHandler`, wired
 * like test/support/nest-test-app.ts: commit after success, retries and dead letters on (the library's defaults).
 * With `job.validate` (systems d+v and d+vp): a global validation pipe (the library's CompiledValidationPipe, or
 * Nest's ValidationPipe) and the flight DTO, as in the example service.
 */
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { runChild, watchKafkajs } from '../lib/child.mjs';
import { createValidationPipe, declareParamTypes } from '../lib/flight-dto.mjs';
import {
  decorateClass,
  decorateMethod,
  importLibrary,
  importLibraryClient,
  NEST_LOG_LEVELS,
} from '../lib/nest.mjs';
import { CLIENT_RETRY, CONSUMER_TUNING } from '../lib/settings.mjs';

const { KafkaGroupsServer, KafkaHandler, KafkaModule } = await importLibrary();
watchKafkajs((await importLibraryClient()).Kafka);

await runChild(async (job, tracker) => {
  class FlightsController {
    onFlight(flight, ctx) {
      tracker.record(ctx.partition, ctx.offset, flight, ctx.timestamp);
    }
  }
  decorateMethod(
    FlightsController,
    'onFlight',
    [KafkaHandler('${TOPIC}')],
    [
      [0, Payload()],
      [1, Ctx()],
    ],
  );
  // c+v / d+v / d+vp: the DTO as the payload's type, so the global pipe validates and transforms it.
  if (job.validate) declareParamTypes(FlightsController, 'onFlight');
  decorateClass(FlightsController, [Controller()]);

  class FlightsModule {}
  decorateClass(FlightsModule, [
    Module({
      imports: [KafkaModule.forFeature({ groupId: job.groupId, topicVariables: { TOPIC: job.topic } })],
      controllers: [FlightsController],
    }),
  ]);

  class BenchAppModule {}
  decorateClass(BenchAppModule, [
    Module({
      imports: [
        KafkaModule.forRoot({
          brokers: job.brokers,
          clientId: 'bench-d',
          fromBeginning: true,
          consumer: CONSUMER_TUNING,
          clientRetry: CLIENT_RETRY,
          partitionsConsumedConcurrently: job.partitionsConsumedConcurrently,
          shutdownTimeoutMs: 10_000,
          // retry and deadLetter: the library's defaults (3 attempts, dead letters to `<topic>-dlt`).
        }),
        FlightsModule,
      ],
    }),
  ]);

  const app = await NestFactory.create(BenchAppModule, { logger: NEST_LOG_LEVELS });
  if (job.validate) app.useGlobalPipes(await createValidationPipe(job.validate));
  app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
  await app.init();
  await app.startAllMicroservices();
  return () => app.close();
});
