/**
 * System c: @nestjs/microservices' built-in Kafka transport (ServerKafka, `eachMessage` under the hood) with an
 * `@EventPattern` handler, connected to an HTTP app the way this project's app is (same shape as system d).
 * Same client retry, fetch settings (`consumer`) and partition concurrency (`run`) as a, b and d.
 * With `job.validate` (system c+v): a global ValidationPipe and the flight DTO, as in the example service.
 */
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload, Transport } from '@nestjs/microservices';
import kafkajs from 'kafkajs';
import { runChild, watchKafkajs } from '../lib/child.mjs';
import { createValidationPipe, declareParamTypes } from '../lib/flight-dto.mjs';
import { decorateClass, decorateMethod, NEST_LOG_LEVELS } from '../lib/nest.mjs';
import { CLIENT_RETRY, CONSUMER_TUNING } from '../lib/settings.mjs';

watchKafkajs(kafkajs.Kafka);

await runChild(async (job, tracker) => {
  class FlightsController {
    onFlight(flight, ctx) {
      const message = ctx.getMessage();
      tracker.record(ctx.getPartition(), message.offset, flight, message.timestamp);
    }
  }
  decorateMethod(
    FlightsController,
    'onFlight',
    [EventPattern(job.topic)],
    [
      [0, Payload()],
      [1, Ctx()],
    ],
  );
  // c+v / d+v / d+vp: the DTO as the payload's type, so the global pipe validates and transforms it.
  if (job.validate) declareParamTypes(FlightsController, 'onFlight');
  decorateClass(FlightsController, [Controller()]);

  class BenchAppModule {}
  decorateClass(BenchAppModule, [Module({ controllers: [FlightsController] })]);

  const app = await NestFactory.create(BenchAppModule, { logger: NEST_LOG_LEVELS });
  if (job.validate) app.useGlobalPipes(await createValidationPipe(job.validate));
  app.connectMicroservice(
    {
      transport: Transport.KAFKA,
      options: {
        // No "-server" suffix: the orchestrator reads the group's offsets by the exact id.
        postfixId: '',
        client: {
          clientId: 'bench-c',
          brokers: job.brokers,
          retry: CLIENT_RETRY,
          logLevel: kafkajs.logLevel.WARN,
        },
        consumer: {
          groupId: job.groupId,
          allowAutoTopicCreation: false,
          ...CONSUMER_TUNING,
          retry: CLIENT_RETRY,
        },
        subscribe: { fromBeginning: true },
        run: { autoCommit: true, partitionsConsumedConcurrently: job.partitionsConsumedConcurrently },
      },
    },
    { inheritAppConfig: true },
  );
  await app.init();
  await app.startAllMicroservices();
  return () => app.close();
});
