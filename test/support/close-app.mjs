/**
 * The built example service (dist/app.module.js) started as main.ts starts it, then closed with `app.close()` and no
 * signal: the process must then end by itself, with nothing left behind (no timer, no socket). Prints
 * "CLOSED <ms>" once `app.close()` resolved; the parent measures when the process exits.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { KafkaGroupsServer } from 'nest-kafka-groups';
import { AppModule } from '../../dist/app.module.js';

process.on('unhandledRejection', (reason) => {
  process.stdout.write(`UNHANDLED REJECTION ${reason instanceof Error ? reason.stack : String(reason)}\n`);
});

const app = await NestFactory.create(AppModule, { logger: ['fatal', 'error', 'warn', 'log'] });
app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
await app.init();
await app.startAllMicroservices();
await app.listen(0, '127.0.0.1');
process.stdout.write('STARTED\n');
await new Promise((resolve) => setTimeout(resolve, Number(process.env.CLOSE_AFTER_MS ?? 1_000)));
const started = Date.now();
await app.close();
process.stdout.write(`CLOSED ${Date.now() - started}\n`);
