import 'reflect-metadata';
import { afterAll, afterEach, describe, expect, jest, test } from '@jest/globals';
import {
  type ArgumentMetadata,
  Controller,
  type INestApplication,
  Module,
  ValidationPipe,
} from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { IsIn, IsInt, IsNumber, Max, Min } from 'class-validator';
import { DLT_HEADERS, type KafkaGroupContext, KafkaHandler, KafkaModule } from 'nest-kafka-groups';
import { KafkaTestClient, uniqueName } from 'nest-kafka-groups/testing';
import { CompiledValidationPipe } from 'nest-kafka-groups/validation';
import { startTestApp } from './support/nest-test-app.js';

class Reading {
  @IsInt() @Min(0) seq!: number;
  @IsNumber() @Min(-90) @Max(90) lat!: number;
  @IsIn(['ADSB', 'MLAT']) source!: string;
}

describe('CompiledValidationPipe as the global pipe of a Kafka handler', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];
  afterEach(async () => {
    jest.restoreAllMocks();
    while (apps.length > 0) await apps.pop()!.close();
  });
  afterAll(() => kafka.closeAll());

  test('valid payloads reach the handler as DTO instances; invalid ones are dead-lettered with the reasons', async () => {
    const groupId = uniqueName('compiled');
    const topic = uniqueName('compiled');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const received: { instance: boolean; payload: unknown; offset: string }[] = [];

    @Controller()
    class ReadingsController {
      @KafkaHandler('${TOPIC}')
      onReading(@Payload() reading: Reading, @Ctx() ctx: KafkaGroupContext) {
        received.push({ instance: reading instanceof Reading, payload: { ...reading }, offset: ctx.offset });
      }
    }
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [ReadingsController],
    })
    class ReadingsModule {}

    // ValidationPipe's own path runs only for the context parameter (not a plain object): the payloads take the plan.
    const fallback = jest.spyOn(ValidationPipe.prototype, 'transform');
    const pipe = new CompiledValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true });
    const { app } = await startTestApp([ReadingsModule], {}, [], { globalValidation: pipe });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    const values = [
      { seq: 0, lat: 51.5, source: 'ADSB' },
      { seq: 1, lat: 123, source: 'RADAR' },
      { seq: 2, lat: 10, source: 'MLAT', extra: true },
      { seq: 3, lat: -10, source: 'MLAT' },
    ];
    await kafka.produce(
      topic,
      values.map((value) => ({ key: String(value.seq), value: JSON.stringify(value) })),
    );
    await kafka.waitForCommittedToEnd(groupId, topic);

    expect(received).toEqual([
      { instance: true, payload: values[0], offset: '0' },
      { instance: true, payload: values[3], offset: '3' },
    ]);
    expect(new Set(fallback.mock.calls.map(([, metadata]) => (metadata as ArgumentMetadata).type))).toEqual(
      new Set(['custom']),
    );
    const dead = (await kafka.readMessages(`${topic}-dlt`, 2)).map((message) => ({
      key: String(message.key),
      fqcn: String(message.headers?.[DLT_HEADERS.exceptionFqcn]),
      reasons: String(message.headers?.[DLT_HEADERS.exceptionMessage]),
    }));
    expect(dead).toEqual([
      {
        key: '1',
        fqcn: 'BadRequestException',
        reasons: 'lat must not be greater than 90; source must be one of the following values: ADSB, MLAT',
      },
      { key: '2', fqcn: 'BadRequestException', reasons: 'property extra should not exist' },
    ]);
  });
});
