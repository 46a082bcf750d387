/**
 * OpenTelemetry tracing against a real broker (issue 13.1), with the SDK's in-memory exporter: one trace from an
 * HTTP request through `KafkaProducer` to the handler of the example service; the attributes of the CONSUMER span;
 * the handler's own spans nested under it; a failing message's attempts (one span each) and its dead-letter write
 * (a PRODUCER span linked to the last attempt, its context in the dead-letter record's headers); with retry topics,
 * the hand-over to the retry topic and the delivery from it in the same trace. The trace of the
 * HTTP request is written to reports/traces/trace-http-to-handler.json, the failing message's to
 * reports/traces/trace-dead-letter.json.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { Ctx, Payload } from '@nestjs/microservices';
import { context, propagation, type SpanContext, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { mkdirSync, writeFileSync } from 'node:fs';
import request from 'supertest';
import { KafkaGroupContext, KafkaHandler, KafkaModule, KafkaProducer } from 'nest-kafka-groups';
import { KAFKA_SPAN_ATTRIBUTES as A, KafkaTracingModule } from 'nest-kafka-groups/tracing';
import { validateEnvironment } from '../src/config/environment.js';
import { AirnavModule } from '../src/flights/airnav/airnav.module.js';
import { TracingModule } from '../src/observability/tracing.module.js';
import { testBrokers, KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const testTracer = () => trace.getTracer('tracing-e2e');

const spans = () => exporter.getFinishedSpans();
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const inTrace = (traceId: string) => spans().filter((s) => s.spanContext().traceId === traceId);

/** A trace as JSON: what an exporter sends, minus the SDK's internals. */
function traceJson(traceId: string) {
  return inTrace(traceId)
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])
    .map((s) => ({
      name: s.name,
      kind: SpanKind[s.kind],
      traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId,
      parentSpanId: parentOf(s) ?? null,
      scope: s.instrumentationScope.name,
      startTime: s.startTime,
      endTime: s.endTime,
      status: { code: SpanStatusCode[s.status.code], message: s.status.message },
      attributes: s.attributes,
      events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
      links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
    }));
}

/** Beside the test reports, not among them: CI's summary reads every JSON file in reports/ as a jest report. */
function writeTrace(file: string, traceId: string): void {
  mkdirSync('reports/traces', { recursive: true });
  writeFileSync(
    `reports/traces/${file}`,
    `${JSON.stringify({ traceId, spans: traceJson(traceId) }, null, 2)}\n`,
  );
}

const fails = new Set<string>();

@Controller()
class TracedController {
  @KafkaHandler('${TOPIC}')
  async handle(@Payload() payload: { id: string }, @Ctx() ctx: KafkaGroupContext): Promise<void> {
    // The handler's own work: a span that must nest under the delivery's CONSUMER span.
    await testTracer().startActiveSpan(`work ${payload.id}`, async (span) => {
      span.setAttribute('attempt', ctx.attempt);
      span.end();
    });
    if (fails.has(payload.id)) throw new Error(`cannot handle ${payload.id}`);
  }
}

beforeAll(() => {
  provider.register();
});

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

describe('tracing: HTTP -> produce -> consume -> handler (example service)', () => {
  const names = { topic: uniqueName('trace-airnav'), group: uniqueName('trace-airnav-group') };
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      KAFKA_BROKERS: testBrokers().join(','),
      AIRNAV_TOPIC: names.topic,
      AIRNAV_GROUP_ID: names.group,
      KAFKA_TOPIC_PARTITIONS: '2',
      FEED_ENABLED: 'false',
    });
    try {
      @Module({
        imports: [
          ConfigModule.forRoot({ isGlobal: true, validate: validateEnvironment, ignoreEnvFile: true }),
        ],
      })
      class TestConfigModule {}
      ({ app } = await startTestApp([AirnavModule], { topics: { create: true, partitions: 2 } }, [
        TestConfigModule,
        TracingModule,
      ]));
      await app.listen(0, '127.0.0.1');
      url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });

  afterAll(async () => {
    await app?.close();
  });

  test('one trace id from the caller through POST /airnav/positions, the send and the CONSUMER span', async () => {
    // The caller's span, sent as `traceparent` the way an instrumented HTTP client does.
    const caller = testTracer().startSpan('caller');
    const headers: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), caller), headers);
    caller.end();
    const { traceId } = caller.spanContext();
    const position = {
      icao24: 'abc123',
      callsign: 'DLH4TR',
      lat: 50.03,
      lon: 8.57,
      altitude: 1200,
      speed: 180,
      heading: 90,
      ts: Date.now(),
    };

    const response = await request(url).post('/airnav/positions').set(headers).send(position).expect(202);
    expect(response.body).toEqual({ topic: names.topic, key: 'abc123' });

    const processSpan = await waitFor('the CONSUMER span of the posted position', 30_000, () =>
      inTrace(traceId).find((s) => s.name === `process ${names.topic}`),
    );
    const server = inTrace(traceId).find((s) => s.kind === SpanKind.SERVER)!;
    const send = inTrace(traceId).find((s) => s.name === `send ${names.topic}`)!;
    expect(server.name).toBe('POST /airnav/positions');
    expect(server.attributes['http.response.status_code']).toBe(202);
    // caller -> SERVER -> PRODUCER -> CONSUMER, one trace.
    expect(parentOf(server)).toBe(caller.spanContext().spanId);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(send)).toBe(server.spanContext().spanId);
    expect(parentOf(processSpan)).toBe(send.spanContext().spanId);
    expect(processSpan.kind).toBe(SpanKind.CONSUMER);
    expect(send.attributes).toMatchObject({
      [A.system]: 'kafka',
      [A.operationType]: 'send',
      [A.destination]: names.topic,
      [A.key]: 'abc123',
    });
    expect(processSpan.attributes).toMatchObject({
      [A.system]: 'kafka',
      [A.operationType]: 'process',
      [A.operationName]: 'process',
      [A.destination]: names.topic,
      [A.key]: 'abc123',
      [A.consumerGroup]: names.group,
      [A.attempt]: 1,
      [A.handler]: 'AirnavController.onPosition',
    });
    expect(['0', '1']).toContain(processSpan.attributes[A.partition]);
    expect(processSpan.attributes[A.offset]).toEqual(expect.any(Number));
    expect(processSpan.status.code).toBe(SpanStatusCode.UNSET);
    writeTrace('trace-http-to-handler.json', traceId);
  });
});

describe('tracing: attempts and the dead-letter write', () => {
  const kafka = new KafkaTestClient();
  const topic = uniqueName('traced');
  const groupId = uniqueName('traced-group');
  let app: INestApplication;

  beforeAll(async () => {
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
      controllers: [TracedController],
    })
    class TracedFeature {}
    ({ app } = await startTestApp(
      [TracedFeature],
      {
        topics: { create: true, partitions: 2 },
        retry: { attempts: 3, initialDelayMs: 100, multiplier: 1, maxDelayMs: 100 },
      },
      [KafkaTracingModule.forRoot() as never],
    ));
  });

  afterAll(async () => {
    await app?.close();
    await kafka.closeAll();
  });

  /** Sends one message from inside a span of the test's, so its trace is known. */
  async function produce(id: string): Promise<SpanContext> {
    const producer = app.get(KafkaProducer);
    return testTracer().startActiveSpan(`produce ${id}`, async (span) => {
      await producer.send(topic, { key: id, value: { id } });
      span.end();
      return span.spanContext();
    });
  }

  test('the handler sees the CONSUMER span as the active context: its spans nest under it', async () => {
    const root = await produce('ok-1');
    const work = await waitFor('the handler span', 30_000, () =>
      inTrace(root.traceId).find((s) => s.name === 'work ok-1'),
    );
    const processSpan = inTrace(root.traceId).find((s) => s.name === `process ${topic}`)!;
    expect(parentOf(work)).toBe(processSpan.spanContext().spanId);
    expect(processSpan.attributes).toMatchObject({
      [A.destination]: topic,
      [A.consumerGroup]: groupId,
      [A.key]: 'ok-1',
      [A.attempt]: 1,
      [A.handler]: 'TracedController.handle',
    });
  });

  test('a failing message: one CONSUMER span per attempt (ERROR, exception event), then a PRODUCER span for the dead letter linked to the last', async () => {
    fails.add('bad-1');
    const root = await produce('bad-1');
    const deadLetter = await waitFor('the dead-letter PRODUCER span', 30_000, () =>
      inTrace(root.traceId).find((s) => s.name === `send ${topic}-dlt`),
    );
    const attempts = inTrace(root.traceId)
      .filter((s) => s.name === `process ${topic}`)
      .sort((a, b) => Number(a.attributes[A.attempt]) - Number(b.attributes[A.attempt]));
    const send = inTrace(root.traceId).find((s) => s.name === `send ${topic}`)!;
    expect(attempts.map((s) => s.attributes[A.attempt])).toEqual([1, 2, 3]);
    for (const attempt of attempts) {
      expect(parentOf(attempt)).toBe(send.spanContext().spanId);
      expect(attempt.status).toEqual({ code: SpanStatusCode.ERROR, message: 'cannot handle bad-1' });
      expect(attempt.attributes[A.errorType]).toBe('Error');
      const [event] = attempt.events;
      expect(event.name).toBe('exception');
      expect(event.attributes?.['exception.message']).toBe('cannot handle bad-1');
      // The handler's span of each attempt nests under that attempt's span.
      const work = inTrace(root.traceId).filter(
        (s) => s.name === 'work bad-1' && parentOf(s) === attempt.spanContext().spanId,
      );
      expect(work).toHaveLength(1);
    }
    // All attempts read the same offset.
    expect(new Set(attempts.map((s) => s.attributes[A.offset])).size).toBe(1);

    expect(deadLetter.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(deadLetter)).toBe(send.spanContext().spanId);
    expect(deadLetter.links.map((l) => l.context.spanId)).toEqual([attempts[2].spanContext().spanId]);
    expect(deadLetter.attributes).toMatchObject({
      [A.system]: 'kafka',
      [A.operationType]: 'send',
      [A.destination]: `${topic}-dlt`,
      [A.republish]: 'dead-letter',
      [A.sourceTopic]: topic,
      [A.sourceOffset]: attempts[0].attributes[A.offset],
      [A.key]: 'bad-1',
    });

    // The dead-letter record carries the write's context: a reader of the dead-letter topic continues the trace.
    const [record] = await kafka.readMessages(`${topic}-dlt`, 1);
    const { traceId, spanId } = deadLetter.spanContext();
    expect(record.headers?.traceparent?.toString()).toBe(`00-${traceId}-${spanId}-01`);
    writeTrace('trace-dead-letter.json', root.traceId);
  });
});

describe('tracing: retry topics', () => {
  const topic = uniqueName('traced-retry');
  const groupId = uniqueName('traced-retry-group');
  let app: INestApplication;

  beforeAll(async () => {
    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId,
          topicVariables: { TOPIC: topic },
          retry: { topics: true, delaysMs: [200] },
        }),
      ],
      controllers: [TracedController],
    })
    class RetryTopicFeature {}
    ({ app } = await startTestApp([RetryTopicFeature], { topics: { create: true, partitions: 1 } }, [
      KafkaTracingModule.forRoot() as never,
    ]));
  });

  afterAll(async () => {
    await app?.close();
  });

  test('the write to the retry topic is a PRODUCER span linked to the failed attempt; the retry delivery is its child; the dead letter follows in the same trace', async () => {
    fails.add('bad-r');
    const root = await testTracer().startActiveSpan('produce bad-r', async (span) => {
      await app.get(KafkaProducer).send(topic, { key: 'bad-r', value: { id: 'bad-r' } });
      span.end();
      return span.spanContext();
    });
    const deadLetter = await waitFor('the dead-letter PRODUCER span after the retry topic', 30_000, () =>
      inTrace(root.traceId).find((s) => s.name === `send ${topic}-dlt`),
    );
    const send = inTrace(root.traceId).find((s) => s.name === `send ${topic}`)!;
    const first = inTrace(root.traceId).find((s) => s.name === `process ${topic}`)!;
    const handOver = inTrace(root.traceId).find((s) => s.name === `send ${topic}-retry`)!;
    const second = inTrace(root.traceId).find((s) => s.name === `process ${topic}-retry`)!;

    expect(first.attributes[A.attempt]).toBe(1);
    expect(parentOf(first)).toBe(send.spanContext().spanId);
    expect(first.status.code).toBe(SpanStatusCode.ERROR);

    expect(handOver.kind).toBe(SpanKind.PRODUCER);
    expect(handOver.attributes).toMatchObject({
      [A.republish]: 'retry',
      [A.destination]: `${topic}-retry`,
      [A.sourceTopic]: topic,
    });
    expect(parentOf(handOver)).toBe(send.spanContext().spanId);
    expect(handOver.links.map((l) => l.context.spanId)).toEqual([first.spanContext().spanId]);

    expect(second.attributes).toMatchObject({ [A.attempt]: 2, [A.destination]: `${topic}-retry` });
    expect(parentOf(second)).toBe(handOver.spanContext().spanId);
    expect(second.status.code).toBe(SpanStatusCode.ERROR);

    expect(deadLetter.attributes).toMatchObject({
      [A.republish]: 'dead-letter',
      [A.sourceTopic]: `${topic}-retry`,
    });
    expect(parentOf(deadLetter)).toBe(handOver.spanContext().spanId);
    expect(deadLetter.links.map((l) => l.context.spanId)).toEqual([second.spanContext().spanId]);
    writeTrace('trace-retry-topic.json', root.traceId);
  });
});
