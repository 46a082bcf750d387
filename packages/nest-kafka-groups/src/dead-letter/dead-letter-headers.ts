import type { IHeaders, KafkaMessage } from '../client/kafkajs.js';
import { appendHeader, appendRetryHeaders, type RetryHeaderValues } from '../retry/retry-topic-headers.js';

/** Spring Kafka's dead-letter header names (KafkaHeaders.DLT_*), so tools reading Spring dead letters read ours. */
export const DLT_HEADERS = {
  originalTopic: 'kafka_dlt-original-topic',
  originalPartition: 'kafka_dlt-original-partition',
  originalOffset: 'kafka_dlt-original-offset',
  originalTimestamp: 'kafka_dlt-original-timestamp',
  originalTimestampType: 'kafka_dlt-original-timestamp-type',
  originalConsumerGroup: 'kafka_dlt-original-consumer-group',
  exceptionFqcn: 'kafka_dlt-exception-fqcn',
  exceptionCauseFqcn: 'kafka_dlt-exception-cause-fqcn',
  exceptionMessage: 'kafka_dlt-exception-message',
  exceptionStacktrace: 'kafka_dlt-exception-stacktrace',
} as const;

/**
 * Headers of a stub record, written in place of a dead letter that does not fit its topic (the original value and
 * headers are left out; the record keeps the key and Spring's headers, so it names the original to read back).
 */
export const DLT_STUB_HEADERS = {
  /** Why the original could not be written: the broker's error, the dead-letter topic and the sizes. */
  reason: 'nkg_dlt-stub-reason',
  /** Size in bytes of the original value, as a decimal string. */
  valueBytes: 'nkg_dlt-original-value-bytes',
} as const;

/**
 * Bounds of the two headers that grow with the error: a stack trace is cut to its first frames (Spring writes it
 * whole, and a deep one next to a large value could exceed the topic's max.message.bytes), a message to its start.
 */
export const MAX_STACK_TRACE_BYTES = 8_192;
export const MAX_EXCEPTION_MESSAGE_BYTES = 4_096;
const TRUNCATED = '\n... (truncated)';

export interface DeadLetterSource {
  topic: string;
  partition: number;
  message: KafkaMessage;
  groupId: string;
  error: Error;
  /**
   * Set when the record moves along a chain of retry topics (to the next one, or from it to the dead-letter
   * topic): Spring's retry headers are appended, and the original-* headers of the first failure are kept.
   */
  retry?: RetryHeaderValues;
  /** The destination is a retry topic, where the record is handled again (not the dead-letter topic). */
  toRetryTopic?: boolean;
}

function int32(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function int64(value: string): Buffer {
  const buffer = Buffer.allocUnsafe(8);
  buffer.writeBigInt64BE(BigInt(value));
  return buffer;
}

/** kafkajs's TimestampTypes.LOG_APPEND_TIME, from the record batch's attributes (`batchContext.timestampType`). */
const LOG_APPEND_TIME = 1;

/**
 * The record's timestamp type by Java's name (`TimestampType.toString()`, which Spring's recoverer writes):
 * LogAppendTime for a topic with `message.timestamp.type=LogAppendTime`, else CreateTime.
 */
function timestampTypeName(message: KafkaMessage): Buffer {
  const { batchContext } = message as { batchContext?: { timestampType?: number } };
  return Buffer.from(batchContext?.timestampType === LOG_APPEND_TIME ? 'LogAppendTime' : 'CreateTime');
}

/** The class name, as Spring records the exception's class; `name` only for errors built without a class. */
function errorClassName(error: Error): string {
  const className = error.constructor?.name;
  return className && className !== 'Error' ? className : error.name || 'Error';
}

/**
 * The error's stack, then each of its causes' after "Caused by: ", as Java's printStackTrace writes the trace Spring
 * puts in the header: the causes are named nowhere else. A cause that is not an Error is printed as its value.
 */
function stackWithCauses(error: Error): string {
  let trace = error.stack ?? `${error.name}: ${error.message}`;
  const seen = new Set<unknown>([error]);
  for (let cause = error.cause; cause !== undefined && !seen.has(cause); cause = (cause as Error).cause) {
    seen.add(cause);
    if (!(cause instanceof Error)) {
      trace += `\nCaused by: ${String(cause)}`;
      break;
    }
    trace += `\nCaused by: ${cause.stack ?? `${cause.name}: ${cause.message}`}`;
  }
  return trace;
}

/**
 * The original headers plus Spring's: partition as a 4-byte big-endian int, offset and timestamp as 8-byte
 * big-endian longs, everything else UTF-8. A message dead-lettered again (read from a dead-letter topic and failing
 * there) keeps the earlier original-* values and gets the latest appended, the last naming the record it was read
 * from, as Spring's DeadLetterPublishingRecoverer does by default (`appendOriginalHeaders`); the exception headers
 * are replaced (`stripPreviousExceptionHeaders`), so they describe the latest failure.
 */
export function buildDeadLetterHeaders(source: DeadLetterSource): IHeaders {
  const { topic, partition, message, groupId, error } = source;
  const headers: IHeaders = { ...message.headers };
  // Along retry topics the original-* headers name the main topic's record, as Spring's retry chain keeps them.
  if (!source.retry || headers[DLT_HEADERS.originalTopic] === undefined) {
    appendHeader(headers, DLT_HEADERS.originalTopic, Buffer.from(topic));
    appendHeader(headers, DLT_HEADERS.originalPartition, int32(partition));
    appendHeader(headers, DLT_HEADERS.originalOffset, int64(message.offset));
    appendHeader(headers, DLT_HEADERS.originalTimestamp, int64(message.timestamp));
    appendHeader(headers, DLT_HEADERS.originalTimestampType, timestampTypeName(message));
    appendHeader(headers, DLT_HEADERS.originalConsumerGroup, Buffer.from(groupId));
  }
  // Spring's recoverer names in the cause header the exception the listener threw (ErrorHandlingUtils.findRootCause
  // unwraps only the container's ListenerExecutionFailedException, which goes in fqcn). Nothing wraps the handler's
  // error here, so both name it, as Spring writes them for an exception it is given unwrapped: a reader routing on
  // either, the cause header as Spring teams do, finds the handler's class.
  const className = Buffer.from(errorClassName(error));
  headers[DLT_HEADERS.exceptionFqcn] = className;
  headers[DLT_HEADERS.exceptionCauseFqcn] = className;
  headers[DLT_HEADERS.exceptionMessage] = boundedUtf8(error.message, MAX_EXCEPTION_MESSAGE_BYTES);
  headers[DLT_HEADERS.exceptionStacktrace] = boundedUtf8(stackWithCauses(error), MAX_STACK_TRACE_BYTES);
  if (source.retry) appendRetryHeaders(headers, source.retry);
  return headers;
}

/**
 * The record written when the dead letter itself is too large for its topic: the original key, no value, Spring's
 * headers (which name the original topic, partition and offset) without the original headers, and the reason.
 */
export function buildStubHeaders(source: DeadLetterSource, reason: string): IHeaders {
  const headers = buildDeadLetterHeaders({
    ...source,
    message: { ...source.message, headers: {} } as KafkaMessage,
  });
  headers[DLT_STUB_HEADERS.reason] = boundedUtf8(reason, MAX_EXCEPTION_MESSAGE_BYTES);
  headers[DLT_STUB_HEADERS.valueBytes] = Buffer.from(String(source.message.value?.length ?? 0));
  return headers;
}

/** UTF-8 bytes of `text`, cut (on a character boundary, with a marker) to at most `maxBytes`. */
export function boundedUtf8(text: string, maxBytes: number): Buffer {
  const bytes = Buffer.from(text);
  if (bytes.length <= maxBytes) return bytes;
  const marker = Buffer.from(TRUNCATED);
  let end = maxBytes - marker.length;
  // Back off continuation bytes (10xxxxxx) so the cut never splits a character.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return Buffer.concat([bytes.subarray(0, end), marker]);
}
