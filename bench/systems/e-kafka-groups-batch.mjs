/**
 * System e: this project with a batch handler, `@KafkaHandler('${TOPIC}', { batch: true })`: one call per batch of
 * a partition (at most the library's default maxBatchSize), the payload the parsed messages in offset order, the
 * offsets on `ctx.messages`. Otherwise wired like d: commit after success, retries and dead letters on.
 */
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { runChild, watchKafkajs } from '../lib/child.mjs';
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
    onFlights(flights, ctx) {
      const { partition, messages } = ctx;
      for (let i = 0; i < flights.length; i++)
        tracker.record(partition, messages[i].offset, flights[i], messages[i].timestamp);
    }
  }
  decorateMethod(
    FlightsController,
    'onFlights',
    [KafkaHandler('${TOPIC}', { batch: true })],
    [
      [0, Payload()],
      [1, Ctx()],
    ],
    // onFlights(flights: FlightPosition[], ctx: KafkaGroupContext)
    [Array, Object],
  );
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
          clientId: 'bench-e',
          fromBeginning: true,
          consumer: CONSUMER_TUNING,
          clientRetry: CLIENT_RETRY,
          partitionsConsumedConcurrently: job.partitionsConsumedConcurrently,
          shutdownTimeoutMs: 10_000,
        }),
        FlightsModule,
      ],
    }),
  ]);

  const app = await NestFactory.create(BenchAppModule, { logger: NEST_LOG_LEVELS });
  app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
  await app.init();
  await app.startAllMicroservices();
  return () => app.close();
});
