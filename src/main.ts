import 'reflect-metadata';
import { Logger, type LogLevel, ValidationPipe } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import type { Environment } from './config/environment.js';
import { KafkaGroupsServer } from './kafka/index.js';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule, { bufferLogs: true });
  const config = app.get<ConfigService<Environment, true>>(ConfigService);
  const level = config.get('LOG_LEVEL', { infer: true });
  app.useLogger(LEVELS.slice(0, LEVELS.indexOf(level) + 1));
  app.useGlobalPipes(new ValidationPipe({ transform: true }));
  app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
  app.enableShutdownHooks();
  await app.init();
  await app.startAllMicroservices();
  await app.listen(config.get('PORT', { infer: true }), '0.0.0.0');
  new Logger('Bootstrap').log(`HTTP on port ${config.get('PORT', { infer: true })}`);
}

void bootstrap();
