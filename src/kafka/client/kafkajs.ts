/**
 * The one seam to the Kafka client library. kafkajs is CommonJS: under ESM only a few names are real named
 * exports, so the default export is imported here once and everything else in the library imports from this file.
 */
import kafkajs from 'kafkajs';

export type {
  Admin,
  Assigner,
  Consumer,
  ConsumerConfig,
  EachBatchPayload,
  GroupMember,
  GroupMemberAssignment,
  IHeaders,
  ISocketFactory,
  KafkaConfig,
  KafkaMessage,
  LogEntry,
  Message,
  PartitionAssigner,
  Producer,
  ProducerConfig,
  RetryOptions,
  SASLOptions,
} from 'kafkajs';

export const { Kafka, AssignerProtocol, Partitioners, logLevel: KafkaLogLevel } = kafkajs;
export type Kafka = InstanceType<typeof kafkajs.Kafka>;

/** Errors raised while the group is rebalancing: never a handler failure, always let kafkajs see them. */
const REBALANCE_ERROR_TYPES = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'NOT_COORDINATOR_FOR_GROUP',
  'UNKNOWN_MEMBER_ID',
  'FENCED_INSTANCE_ID',
]);

export function isRebalanceError(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' && REBALANCE_ERROR_TYPES.has(type);
}

export function isKafkaClientError(error: unknown): boolean {
  return error instanceof kafkajs.KafkaJSError;
}

const CONNECTION_ERROR_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
]);

/** A broker that cannot be reached (the error or one of its causes): the broker connectivity lines report it. */
export function isConnectionError(error: unknown): boolean {
  for (let e = error as { name?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.name === 'string' && CONNECTION_ERROR_NAMES.has(e.name)) return true;
    e = e.cause as typeof e;
  }
  return false;
}
