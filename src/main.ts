import 'reflect-metadata';
import { Logger, type LogLevel } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import type { Environment } from './config/environment.js';
import { createValidationPipe } from './config/validation-pipe.js';
import { KafkaGroupsServer } from 'nest-kafka-groups';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

async function bootstrap(): Promise<void> {
  // ConfigModule has loaded .env into process.env by now; a bad LOG_LEVEL is reported by its validation.
  const level = LEVELS.indexOf(process.env.LOG_LEVEL as LogLevel);
  const app = await NestFactory.create(AppModule, { logger: LEVELS.slice(0, level > 0 ? level + 1 : 4) });
  const config = app.get<ConfigService<Environment, true>>(ConfigService);
  app.useGlobalPipes(createValidationPipe());
  app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
  app.enableShutdownHooks();
  await app.init();
  await app.startAllMicroservices();
  await app.listen(config.get('PORT', { infer: true }), '0.0.0.0');
  new Logger('Bootstrap').log(`HTTP on port ${new URL(await app.getUrl()).port}`);
}

void bootstrap();
