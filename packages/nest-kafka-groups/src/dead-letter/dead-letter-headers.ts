import type { IHeaders, KafkaMessage } from '../client/kafkajs.js';

/** Spring Kafka's dead-letter header names (KafkaHeaders.DLT_*), so tools reading Spring dead letters read ours. */
export const DLT_HEADERS = {
  originalTopic: 'kafka_dlt-original-topic',
  originalPartition: 'kafka_dlt-original-partition',
  originalOffset: 'kafka_dlt-original-offset',
  originalTimestamp: 'kafka_dlt-original-timestamp',
  originalConsumerGroup: 'kafka_dlt-original-consumer-group',
  exceptionFqcn: 'kafka_dlt-exception-fqcn',
  exceptionCauseFqcn: 'kafka_dlt-exception-cause-fqcn',
  exceptionMessage: 'kafka_dlt-exception-message',
  exceptionStacktrace: 'kafka_dlt-exception-stacktrace',
} as const;

export interface DeadLetterSource {
  topic: string;
  partition: number;
  message: KafkaMessage;
  groupId: string;
  error: Error;
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

/** The class name, as Spring records the exception's class; `name` only for errors built without a class. */
function errorClassName(error: Error): string {
  const className = error.constructor?.name;
  return className && className !== 'Error' ? className : error.name || 'Error';
}

/**
 * The original headers plus Spring's: partition as a 4-byte big-endian int, offset and timestamp as 8-byte
 * big-endian longs, everything else UTF-8. Earlier dead-letter headers of the same names are replaced, as Spring
 * does, so a message dead-lettered twice describes its latest failure.
 */
export function buildDeadLetterHeaders(source: DeadLetterSource): IHeaders {
  const { topic, partition, message, groupId, error } = source;
  const headers: IHeaders = { ...message.headers };
  headers[DLT_HEADERS.originalTopic] = Buffer.from(topic);
  headers[DLT_HEADERS.originalPartition] = int32(partition);
  headers[DLT_HEADERS.originalOffset] = int64(message.offset);
  headers[DLT_HEADERS.originalTimestamp] = int64(message.timestamp);
  headers[DLT_HEADERS.originalConsumerGroup] = Buffer.from(groupId);
  headers[DLT_HEADERS.exceptionFqcn] = Buffer.from(errorClassName(error));
  const cause = error.cause;
  if (cause instanceof Error) headers[DLT_HEADERS.exceptionCauseFqcn] = Buffer.from(errorClassName(cause));
  else delete headers[DLT_HEADERS.exceptionCauseFqcn];
  headers[DLT_HEADERS.exceptionMessage] = Buffer.from(error.message);
  headers[DLT_HEADERS.exceptionStacktrace] = Buffer.from(error.stack ?? `${error.name}: ${error.message}`);
  return headers;
}
