import { Inject, Injectable, Logger, type OnModuleInit, Optional } from '@nestjs/common';
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  type Link,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  trace,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { IHeaders, KafkaMessage, Message } from '../client/kafkajs.js';
import { KafkaBatchContext } from '../context/kafka-batch.context.js';
import type { KafkaGroupContext } from '../context/kafka-group.context.js';
import type { DeadLetterSource } from '../dead-letter/dead-letter-headers.js';
import { KafkaProducer } from '../producer/kafka.producer.js';
import type { HandlerInvoker } from '../server/handler-pipeline.js';
import { KafkaGroupsServer } from '../server/kafka-groups.server.js';
import type { KafkaTracingHooks } from '../server/tracing-hooks.js';

/** Injection token of the KafkaTracingOptions (`KafkaTracingModule.forRoot(options)`). */
export const KAFKA_TRACING_OPTIONS = Symbol('KAFKA_TRACING_OPTIONS');

/** The instrumentation scope of every span this library starts. */
export const KAFKA_TRACER_NAME = 'nest-kafka-groups';

/** Options of `KafkaTracingModule.forRoot`. */
export interface KafkaTracingOptions {
  /** Where the tracer comes from. Default: the global tracer provider (the one your SDK registered). */
  tracerProvider?: TracerProvider;
  /**
   * Writes and reads the trace context in message headers. Default: the global propagator, which an SDK sets to
   * W3C Trace Context (`traceparent`, `tracestate`) and Baggage.
   */
  propagator?: TextMapPropagator;
  /**
   * How a delivery's CONSUMER span relates to the context in the message's headers: `'parent'` (default) makes it
   * a child, so one trace runs from the producer to the handler; `'link'` starts a new trace linked to it (for
   * consumers whose traces should stay short, e.g. fan-out topics read by many groups).
   */
  consumerContext?: 'parent' | 'link';
}

/** Attribute names of the OpenTelemetry messaging semantic conventions (Kafka), and this library's own. */
export const KAFKA_SPAN_ATTRIBUTES = {
  system: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  partition: 'messaging.destination.partition.id',
  offset: 'messaging.kafka.offset',
  key: 'messaging.kafka.message.key',
  tombstone: 'messaging.kafka.message.tombstone',
  consumerGroup: 'messaging.consumer.group.name',
  bodySize: 'messaging.message.body.size',
  batchCount: 'messaging.batch.message_count',
  errorType: 'error.type',
  handler: 'code.function.name',
  /** `ctx.attempt`: 1 on the first delivery, 2 on the first retry, ... */
  attempt: 'nest_kafka_groups.attempt',
  /** On a dead-letter or retry write: `'dead-letter'` or `'retry'`. */
  republish: 'nest_kafka_groups.republish',
  /** On a dead-letter or retry write: where the failed message was. */
  sourceTopic: 'nest_kafka_groups.source.topic',
  sourcePartition: 'nest_kafka_groups.source.partition',
  sourceOffset: 'nest_kafka_groups.source.offset',
} as const;
const A = KAFKA_SPAN_ATTRIBUTES;

const headerGetter: TextMapGetter<IHeaders> = {
  keys: (headers) => Object.keys(headers),
  get(headers, key) {
    const value = headers[key];
    if (value === undefined || value === null) return undefined;
    return Array.isArray(value) ? value.map((v) => (v === null ? '' : v.toString())) : value.toString();
  },
};

const headerSetter: TextMapSetter<IHeaders> = {
  set(headers, key, value) {
    headers[key] = value;
  },
};

/**
 * OpenTelemetry tracing of the consumer groups and the producers, registered on `KafkaGroupsServer` and
 * `KafkaProducer` when its module starts:
 * - `KafkaProducer` sends run in a PRODUCER span `send <topic>`, injected into each message's headers;
 * - each delivery of a message to its handler (each attempt) is a CONSUMER span `process <topic>`, the child of
 *   the context in the message's headers (or linked to it), active while the handler runs, with status ERROR and
 *   an exception event when the attempt failed;
 * - a batch handler's call (`batch: true`) is one CONSUMER span `process <topic>` in a trace of its own, linked to
 *   the context of each of its messages, with `messaging.batch.message_count`;
 * - a dead-letter write is a PRODUCER span `send <dead-letter topic>` in the original message's trace, linked to
 *   the span of the attempt that failed last; its context replaces the trace headers of the dead-letter record.
 * Without a registered tracer provider it registers nothing, so the transport runs as without this module.
 */
@Injectable()
export class KafkaTracing implements KafkaTracingHooks, OnModuleInit {
  private readonly logger = new Logger(KafkaTracing.name);
  private readonly tracer: Tracer;
  private readonly propagator: Pick<TextMapPropagator, 'inject' | 'extract' | 'fields'>;
  private readonly linkConsumers: boolean;
  /** The span of a failed attempt, by its failure and by its message: the link of the dead-letter write. */
  private readonly failedAttempts = new WeakMap<object, SpanContext>();
  /** Whether a tracer provider was registered (else nothing is traced, at no cost). */
  readonly enabled: boolean;

  constructor(
    @Optional() private readonly server?: KafkaGroupsServer,
    @Optional() private readonly producer?: KafkaProducer,
    @Optional() @Inject(KAFKA_TRACING_OPTIONS) options: KafkaTracingOptions = {},
  ) {
    const provider = options.tracerProvider ?? trace.getTracerProvider();
    this.enabled =
      !(provider instanceof ProxyTracerProvider) ||
      provider.getDelegateTracer(KAFKA_TRACER_NAME) !== undefined;
    this.tracer = provider.getTracer(KAFKA_TRACER_NAME);
    this.propagator = options.propagator ?? propagation;
    this.linkConsumers = options.consumerContext === 'link';
  }

  onModuleInit(): void {
    if (!this.enabled) {
      this.logger.log(
        'No OpenTelemetry tracer provider is registered: Kafka tracing is off (start your SDK before the Nest application)',
      );
      return;
    }
    this.server?.useTracing(this);
    this.producer?.useTracing(this);
  }

  traceHandler(invoke: HandlerInvoker, handlerName: string): HandlerInvoker {
    return async (data, ctx) => {
      let parent: Context = ROOT_CONTEXT;
      let links: Link[] | undefined;
      let attributes: Attributes;
      if (ctx instanceof KafkaBatchContext) {
        // One call handles messages of many traces: a trace of its own, linked to each (OpenTelemetry's batch case).
        links = ctx.messages.flatMap((message) => this.linkTo(this.extract(message.headers)));
        attributes = batchAttributes(ctx, handlerName);
      } else {
        const extracted = this.extract(ctx.message.headers);
        if (this.linkConsumers) links = this.linkTo(extracted);
        else parent = extracted;
        attributes = processAttributes(ctx, handlerName);
      }
      const span = this.tracer.startSpan(
        `process ${ctx.topic}`,
        { kind: SpanKind.CONSUMER, attributes, links },
        parent,
      );
      let outcome: unknown;
      try {
        outcome = await context.with(trace.setSpan(parent, span), invoke, undefined, data, ctx);
      } catch (error) {
        // The invoker settles with the failure and never rejects; a rejection is reported the same way.
        outcome = error ?? new Error('handler rejected');
      }
      if (outcome !== undefined) {
        failed(span, outcome);
        const attempt = span.spanContext();
        if (typeof outcome === 'object' && outcome !== null) this.failedAttempts.set(outcome, attempt);
        if (ctx instanceof KafkaBatchContext)
          for (const message of ctx.messages) this.failedAttempts.set(message, attempt);
        else this.failedAttempts.set(ctx.message, attempt);
      }
      span.end();
      return outcome;
    };
  }

  async traceSend<T>(topic: string, messages: Message[], send: () => Promise<T>): Promise<T> {
    const attributes: Attributes = {
      [A.system]: 'kafka',
      [A.operationType]: 'send',
      [A.operationName]: 'send',
      [A.destination]: topic,
    };
    if (messages.length === 1) {
      const [message] = messages;
      if (message.key !== null && message.key !== undefined) attributes[A.key] = message.key.toString();
      if (message.partition !== undefined) attributes[A.partition] = String(message.partition);
    } else {
      attributes[A.batchCount] = messages.length;
    }
    const active = context.active();
    const span = this.tracer.startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER, attributes }, active);
    const sending = trace.setSpan(active, span);
    for (const message of messages) {
      message.headers = this.inject(sending, message.headers);
    }
    try {
      return await context.with(sending, send);
    } catch (error) {
      failed(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  async traceRepublish(
    kind: 'dead-letter' | 'retry',
    source: DeadLetterSource,
    topic: string,
    record: Message,
    send: () => Promise<void>,
  ): Promise<void> {
    const { message } = source;
    const attempt = this.failedAttempts.get(source.error) ?? this.failedAttempts.get(message);
    const attributes: Attributes = {
      [A.system]: 'kafka',
      [A.operationType]: 'send',
      [A.operationName]: 'send',
      [A.destination]: topic,
      [A.republish]: kind,
      [A.sourceTopic]: source.topic,
      [A.sourcePartition]: source.partition,
      [A.sourceOffset]: Number(message.offset),
    };
    if (message.key) attributes[A.key] = message.key.toString();
    const original = this.extract(message.headers);
    const span = this.tracer.startSpan(
      `send ${topic}`,
      { kind: SpanKind.PRODUCER, attributes, links: attempt ? [{ context: attempt }] : undefined },
      original,
    );
    const sending = trace.setSpan(original, span);
    record.headers = this.inject(sending, record.headers);
    try {
      await context.with(sending, send);
    } catch (error) {
      failed(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /**
   * A copy of the headers carrying `sending`: the propagator's own fields are replaced, not merged, so a
   * `tracestate` left from another trace (headers copied from a consumed message) does not ride along.
   */
  private inject(sending: Context, headers: IHeaders | undefined): IHeaders {
    const carrier: IHeaders = { ...headers };
    for (const field of this.propagator.fields()) delete carrier[field];
    this.propagator.inject(sending, carrier, headerSetter);
    return carrier;
  }

  /** A link to the span a context carries; none when it carries none. */
  private linkTo(extracted: Context): Link[] {
    const linked = trace.getSpanContext(extracted);
    return linked && isSpanContextValid(linked) ? [{ context: linked }] : [];
  }

  /** The context a message's headers carry, on top of no other (never the consumer loop's accidental one). */
  private extract(headers: IHeaders | undefined): Context {
    return headers ? this.propagator.extract(ROOT_CONTEXT, headers, headerGetter) : ROOT_CONTEXT;
  }
}

/** A batch call: the partition, the count of its messages and the first one's offset, no per-message key or size. */
function batchAttributes(ctx: KafkaBatchContext, handlerName: string): Attributes {
  return {
    [A.system]: 'kafka',
    [A.operationType]: 'process',
    [A.operationName]: 'process',
    [A.destination]: ctx.topic,
    [A.partition]: String(ctx.partition),
    [A.offset]: Number(ctx.firstOffset),
    [A.batchCount]: ctx.size,
    [A.consumerGroup]: ctx.groupId,
    [A.attempt]: ctx.attempt,
    [A.handler]: handlerName,
  };
}

function processAttributes(ctx: KafkaGroupContext, handlerName: string): Attributes {
  const message: KafkaMessage = ctx.message;
  const attributes: Attributes = {
    [A.system]: 'kafka',
    [A.operationType]: 'process',
    [A.operationName]: 'process',
    [A.destination]: ctx.topic,
    [A.partition]: String(ctx.partition),
    [A.offset]: Number(message.offset),
    [A.consumerGroup]: ctx.groupId,
    [A.attempt]: ctx.attempt,
    [A.handler]: handlerName,
  };
  if (message.key !== null && message.key !== undefined) attributes[A.key] = message.key.toString();
  if (message.value === null) attributes[A.tombstone] = true;
  else attributes[A.bodySize] = message.value.length;
  return attributes;
}

/** Status ERROR, `error.type` and an exception event. */
function failed(span: Span, outcome: unknown): void {
  const error =
    outcome instanceof Error
      ? outcome
      : new Error(typeof outcome === 'string' ? outcome : 'non-Error failure', { cause: outcome });
  span.recordException(error);
  span.setAttribute(A.errorType, error.constructor?.name || error.name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}
