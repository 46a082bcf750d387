import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type TracerProvider,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { KafkaMessage, Message } from '../client/kafkajs.js';
import { KafkaBatchContext } from '../context/kafka-batch.context.js';
import { KafkaGroupContext } from '../context/kafka-group.context.js';
import type { DeadLetterSource } from '../dead-letter/dead-letter-headers.js';
import type { KafkaProducer } from '../producer/kafka.producer.js';
import type { KafkaGroupsServer } from '../server/kafka-groups.server.js';
import type { KafkaTracingHooks } from '../server/tracing-hooks.js';
import { KAFKA_SPAN_ATTRIBUTES as A, KafkaTracing, type KafkaTracingOptions } from './kafka-tracing.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const propagator = new W3CTraceContextPropagator();
const contextManager = new AsyncLocalStorageContextManager();
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  context.disable();
});
beforeEach(() => exporter.reset());

function tracing(options: KafkaTracingOptions = {}): KafkaTracing {
  return new KafkaTracing(undefined, undefined, { tracerProvider: provider, propagator, ...options });
}

function message(overrides: Partial<KafkaMessage> = {}): KafkaMessage {
  return {
    key: Buffer.from('k-1'),
    value: Buffer.from('{"a":1}'),
    timestamp: '1700000000000',
    attributes: 0,
    offset: '41',
    headers: { traceparent: Buffer.from(TRACEPARENT) },
    ...overrides,
  } as KafkaMessage;
}

function delivery(msg = message(), attempt = 1): KafkaGroupContext {
  return new KafkaGroupContext('orders', 2, msg, 'billing', attempt, new AbortController().signal);
}

describe('KafkaTracing: CONSUMER spans', () => {
  test('`process <topic>`, child of the context in the headers, with the messaging attributes', async () => {
    let active: string | undefined;
    const invoke = tracing().traceHandler(async () => {
      active = trace.getActiveSpan()?.spanContext().spanId;
      return undefined;
    }, 'Billing.onOrder');
    expect(await invoke({}, delivery())).toBeUndefined();
    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('process orders');
    expect(span.kind).toBe(SpanKind.CONSUMER);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(active).toBe(span.spanContext().spanId);
    expect(span.attributes).toEqual({
      [A.system]: 'kafka',
      [A.operationType]: 'process',
      [A.operationName]: 'process',
      [A.destination]: 'orders',
      [A.partition]: '2',
      [A.offset]: 41,
      [A.key]: 'k-1',
      [A.consumerGroup]: 'billing',
      [A.bodySize]: 7,
      [A.attempt]: 1,
      [A.handler]: 'Billing.onOrder',
    });
    expect(span.links).toEqual([]);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  test("consumerContext 'link': a new trace linked to the producer's context", async () => {
    const invoke = tracing({ consumerContext: 'link' }).traceHandler(async () => undefined, 'h');
    await invoke({}, delivery());
    const [span] = exporter.getFinishedSpans();
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.links.map((l) => [l.context.traceId, l.context.spanId])).toEqual([[TRACE_ID, PARENT_ID]]);
  });

  test('a message without trace headers starts a trace of its own, whatever context the consumer loop has', async () => {
    const invoke = tracing().traceHandler(async () => undefined, 'h');
    const outer = provider.getTracer('t').startSpan('unrelated');
    await context.with(trace.setSpan(ROOT_CONTEXT, outer), () =>
      invoke({}, delivery(message({ headers: {}, key: null, value: null }))),
    );
    const [span] = exporter.getFinishedSpans();
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.spanContext().traceId).not.toBe(outer.spanContext().traceId);
    expect(span.attributes[A.key]).toBeUndefined();
    expect(span.attributes[A.tombstone]).toBe(true);
  });

  test('a failed attempt: status ERROR, error.type, an exception event; the outcome is passed on', async () => {
    class PaymentDeclined extends Error {}
    const failure = new PaymentDeclined('card declined');
    const invoke = tracing().traceHandler(async () => failure, 'h');
    expect(await invoke({}, delivery(message(), 2))).toBe(failure);
    const [span] = exporter.getFinishedSpans();
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'card declined' });
    expect(span.attributes[A.errorType]).toBe('PaymentDeclined');
    expect(span.attributes[A.attempt]).toBe(2);
    expect(span.events.map((e) => [e.name, e.attributes?.['exception.message']])).toEqual([
      ['exception', 'card declined'],
    ]);
  });
});

describe('KafkaTracing: batch calls', () => {
  const OTHER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const OTHER_PARENT = '00f067aa0ba902b7';

  test('one `process <topic>` span per call, in a trace of its own, linked to each message; a failed call is ERROR', async () => {
    const messages = [
      message(),
      message({
        offset: '42',
        headers: { traceparent: Buffer.from(`00-${OTHER_TRACE}-${OTHER_PARENT}-01`) },
      }),
      message({ offset: '43', headers: {} }),
    ];
    const call = new KafkaBatchContext('orders', 2, messages, 'billing', 2, new AbortController().signal);
    const failure = new Error('bulk insert refused');
    const tracer = tracing();
    expect(await tracer.traceHandler(async () => failure, 'Billing.onOrders')([{}, {}, {}], call)).toBe(
      failure,
    );
    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('process orders');
    expect(span.kind).toBe(SpanKind.CONSUMER);
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.links.map((l) => [l.context.traceId, l.context.spanId])).toEqual([
      [TRACE_ID, PARENT_ID],
      [OTHER_TRACE, OTHER_PARENT],
    ]);
    expect(span.attributes).toEqual({
      [A.system]: 'kafka',
      [A.operationType]: 'process',
      [A.operationName]: 'process',
      [A.destination]: 'orders',
      [A.partition]: '2',
      [A.offset]: 41,
      [A.batchCount]: 3,
      [A.consumerGroup]: 'billing',
      [A.attempt]: 2,
      [A.handler]: 'Billing.onOrders',
      [A.errorType]: 'Error',
    });
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe('KafkaTracing: PRODUCER spans', () => {
  test('`send <topic>` under the active span, its context injected into every message (headers copied)', async () => {
    const own = { app: 'x' };
    const records: Message[] = [
      { key: 'a', value: '1', headers: own },
      { key: 'b', value: '2' },
    ];
    const parent = provider.getTracer('t').startSpan('request');
    const result = await context.with(trace.setSpan(ROOT_CONTEXT, parent), () =>
      tracing().traceSend('orders', records, async () => 'sent'),
    );
    expect(result).toBe('sent');
    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('send orders');
    expect(span.kind).toBe(SpanKind.PRODUCER);
    expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(span.attributes).toMatchObject({
      [A.destination]: 'orders',
      [A.batchCount]: 2,
      [A.operationType]: 'send',
    });
    const expected = `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;
    expect(records.map((r) => r.headers?.traceparent)).toEqual([expected, expected]);
    expect(records[0].headers?.app).toBe('x');
    expect(own).toEqual({ app: 'x' });
  });

  test("headers copied from another message lose that trace's fields: no stale tracestate rides along", async () => {
    const record: Message = {
      value: '1',
      headers: { traceparent: Buffer.from(TRACEPARENT), tracestate: Buffer.from('vendor=old'), app: 'x' },
    };
    await tracing().traceSend('orders', [record], async () => undefined);
    const [span] = exporter.getFinishedSpans();
    expect(record.headers).toEqual({
      traceparent: `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`,
      app: 'x',
    });
  });

  test('a failed send: the span records it and the error is rethrown', async () => {
    const error = new Error('broker down');
    await expect(
      tracing().traceSend('orders', [{ key: 'a', value: '1' }], () => Promise.reject(error)),
    ).rejects.toBe(error);
    const [span] = exporter.getFinishedSpans();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes[A.key]).toBe('a');
  });

  test('a dead-letter write: in the original trace, linked to the last failed attempt, context in the record', async () => {
    const t = tracing();
    const failure = new Error('boom');
    const msg = message();
    await t.traceHandler(async () => failure, 'h')({}, delivery(msg, 3));
    const [attempt] = exporter.getFinishedSpans();
    const source: DeadLetterSource = {
      topic: 'orders',
      partition: 2,
      message: msg,
      groupId: 'billing',
      error: failure,
    };
    const record: Message = { key: msg.key, value: msg.value, headers: { ...msg.headers } };
    await t.traceRepublish('dead-letter', source, 'orders-dlt', record, async () => undefined);
    const span = exporter.getFinishedSpans()[1];
    expect(span.name).toBe('send orders-dlt');
    expect(span.kind).toBe(SpanKind.PRODUCER);
    expect(span.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.links.map((l) => l.context.spanId)).toEqual([attempt.spanContext().spanId]);
    expect(span.attributes).toMatchObject({
      [A.republish]: 'dead-letter',
      [A.sourceTopic]: 'orders',
      [A.sourcePartition]: 2,
      [A.sourceOffset]: 41,
      [A.destination]: 'orders-dlt',
    });
    expect(record.headers?.traceparent).toBe(`00-${TRACE_ID}-${span.spanContext().spanId}-01`);
  });

  test('the link is found by the message when the failure reported is another error (a timeout)', async () => {
    const t = tracing();
    const msg = message();
    await t.traceHandler(async () => new Error('slow'), 'h')({}, delivery(msg));
    const [attempt] = exporter.getFinishedSpans();
    const source = {
      topic: 'orders',
      partition: 2,
      message: msg,
      groupId: 'g',
      error: new Error('timed out'),
    };
    await t.traceRepublish('dead-letter', source, 'orders-dlt', { value: null }, async () => undefined);
    expect(exporter.getFinishedSpans()[1].links.map((l) => l.context.spanId)).toEqual([
      attempt.spanContext().spanId,
    ]);
  });
});

describe('KafkaTracing: registration', () => {
  function fakes() {
    const registered: KafkaTracingHooks[] = [];
    const server = {
      useTracing: (h: KafkaTracingHooks) => registered.push(h),
    } as unknown as KafkaGroupsServer;
    const producer = { useTracing: (h: KafkaTracingHooks) => registered.push(h) } as unknown as KafkaProducer;
    return { registered, server, producer };
  }

  test('with a tracer provider it hooks into the transport and the producer', () => {
    const { registered, server, producer } = fakes();
    const t = new KafkaTracing(server, producer, { tracerProvider: provider });
    t.onModuleInit();
    expect(t.enabled).toBe(true);
    expect(registered).toEqual([t, t]);
  });

  test('without a registered tracer provider (the global one is a no-op proxy) it hooks into nothing', () => {
    const { registered, server, producer } = fakes();
    const t = new KafkaTracing(server, producer, {});
    t.onModuleInit();
    expect(t.enabled).toBe(false);
    expect(registered).toEqual([]);
  });

  test('a provider registered globally counts', () => {
    const { registered, server, producer } = fakes();
    trace.setGlobalTracerProvider(provider as TracerProvider);
    try {
      new KafkaTracing(server, producer, {}).onModuleInit();
      expect(registered).toHaveLength(2);
    } finally {
      trace.disable();
    }
  });
});
