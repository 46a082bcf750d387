import type { Message } from '../client/kafkajs.js';
import type { DeadLetterSource } from '../dead-letter/dead-letter-headers.js';
import type { HandlerInvoker } from './handler-pipeline.js';

/**
 * What the transport and the producers call when tracing is on (`nest-kafka-groups/tracing` sets it). The core
 * library only holds this interface, so it never loads `@opentelemetry/api`; with tracing off nothing is wrapped
 * and a send pays one branch.
 */
export interface KafkaTracingHooks {
  /** Wraps a handler's invoker once, at start-up: the returned one runs each delivery in a CONSUMER span. */
  traceHandler(invoke: HandlerInvoker, handlerName: string): HandlerInvoker;
  /** Runs one send in a PRODUCER span whose context is injected into the headers of each message. */
  traceSend<T>(topic: string, messages: Message[], send: () => Promise<T>): Promise<T>;
  /**
   * Runs the write of a failed message to another topic (its dead-letter topic, or a retry topic) in a PRODUCER
   * span: in the trace of the original message, linked to the span of the delivery that failed, its context
   * injected into the record's headers.
   */
  traceRepublish(
    kind: 'dead-letter' | 'retry',
    source: DeadLetterSource,
    topic: string,
    record: Message,
    send: () => Promise<void>,
  ): Promise<void>;
}
