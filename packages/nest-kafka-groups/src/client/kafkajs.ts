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
