import 'reflect-metadata';
import {
  type INestApplication,
  type LogLevel,
  Module,
  type PipeTransform,
  type Type,
  ValidationPipe,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { KafkaGroupsServer, KafkaModule, type KafkaModuleOptions } from 'nest-kafka-groups';
import { testBrokers, TEST_CONSUMER_TUNING, TEST_RETRY } from 'nest-kafka-groups/testing';

const LOG_LEVELS: LogLevel[] = (process.env.TEST_LOG_LEVELS ?? 'error,warn').split(',') as LogLevel[];

/**
 * Boots a Nest application the way main.ts does (HTTP app, strategy connected with the app's config, validation
 * pipe, unless turned off or replaced by the pipe given) with the given feature modules, and starts the Kafka groups.
 * `listen` is optional for HTTP tests.
 */
export async function startTestApp(
  features: Type[],
  root: Partial<KafkaModuleOptions> = {},
  extraImports: Type[] = [],
  { globalValidation = true }: { globalValidation?: boolean | PipeTransform } = {},
): Promise<{ app: INestApplication; server: KafkaGroupsServer }> {
  @Module({
    imports: [
      KafkaModule.forRoot({
        brokers: testBrokers(),
        clientId: 'e2e-app',
        fromBeginning: true,
        consumer: TEST_CONSUMER_TUNING,
        clientRetry: TEST_RETRY,
        retry: { attempts: 3, initialDelayMs: 200, multiplier: 2, maxDelayMs: 2_000 },
        shutdownTimeoutMs: 10_000,
        // Specs wait for commits to reach the end of a topic: a shorter interval than the default second shortens
        // each wait, and commits more often, which only gives a wrong commit more chances to show.
        commitIntervalMs: 200,
        ...root,
      }),
      ...extraImports,
      ...features,
    ],
  })
  class TestAppModule {}

  const app = await NestFactory.create(TestAppModule, { logger: LOG_LEVELS });
  if (globalValidation === true) app.useGlobalPipes(new ValidationPipe({ transform: true }));
  else if (globalValidation) app.useGlobalPipes(globalValidation);
  const server = app.get(KafkaGroupsServer);
  app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
  await app.init();
  try {
    await app.startAllMicroservices();
  } catch (error) {
    await app.close();
    throw error;
  }
  return { app, server };
}
