/**
 * The one seam to the Kafka client library: everything else in the library imports kafkajs from this file. It loads
 * a private instance of the installed kafkajs 2.2.4 with the library's fixes in place (kafkajs-loader.ts; each fix
 * is listed in docs/RELIABILITY.md), so they travel with the library: an application gets plain kafkajs from the
 * registry and runs no install script of ours. Loading fails with KafkaClientCompatibilityError when the installed
 * kafkajs is not the release the fixes were written for.
 */
import type { Admin } from 'kafkajs';
import { createCodecs, DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES, type KafkaCompression } from './codecs.js';
import { adminFix, type ConsumerGroupDescriptions } from './fixes/admin.js';
import { batchFix } from './fixes/batch.js';
import { brokerFix } from './fixes/broker.js';
import { brokerPoolFix } from './fixes/broker-pool.js';
import { connectionFix } from './fixes/connection.js';
import { consumerGroupFix } from './fixes/consumer-group.js';
import { decodeMessagesFix } from './fixes/decode-messages.js';
import { fetchManagerFix } from './fixes/fetch-manager.js';
import { fetchRequestFix } from './fixes/fetch-request.js';
import { fetchResponseFix } from './fixes/fetch-response.js';
import { recordBatchDecoderFix } from './fixes/record-batch-decoder.js';
import { recordDecoderFix } from './fixes/record-decoder.js';
import { recordEncoderFix } from './fixes/record-encoder.js';
import { offsetManagerFix } from './fixes/offset-manager.js';
import { produceResponseFix } from './fixes/produce-response.js';
import { requestFix } from './fixes/request.js';
import { requestQueueFix } from './fixes/request-queue.js';
import { runnerFix } from './fixes/runner.js';
import { sendMessagesFix } from './fixes/send-messages.js';
import { loadKafkajs } from './kafkajs-loader.js';
import { installOffsetOutOfRangePolicy } from './offset-out-of-range.js';

export { undecodableBatchError } from './fixes/decode-messages.js';
export {
  abandonRunningBatches,
  beforeRejoin,
  coordinatorProblem,
  onRebalance,
  type RebalanceHooks,
  resolveInCurrentGroup,
} from './fixes/runner.js';
export { fetchedBeforeDeletion } from './topic-deletion.js';
export { GROUP_ID_NOT_FOUND } from './fixes/consumer-group-describe.js';
export type {
  ConsumerGroupDescribeGroup,
  ConsumerGroupDescribeMember,
  ConsumerGroupMemberType,
} from './fixes/consumer-group-describe.js';
export type { ConsumerGroupDescriptions } from './fixes/admin.js';

/** The fixes the library carries, by the kafkajs module each replaces. */
export const CARRIED_FIXES = [
  sendMessagesFix,
  produceResponseFix,
  recordDecoderFix,
  recordBatchDecoderFix,
  recordEncoderFix,
  decodeMessagesFix,
  fetchResponseFix,
  fetchRequestFix,
  runnerFix,
  offsetManagerFix,
  consumerGroupFix,
  fetchManagerFix,
  brokerPoolFix,
  brokerFix,
  batchFix,
  requestQueueFix,
  requestFix,
  connectionFix,
  adminFix,
] as const;

const loaded = loadKafkajs(CARRIED_FIXES);
const kafkajs = loaded.exports as typeof import('kafkajs');
installOffsetOutOfRangePolicy(loaded.internal);

const decompression = { maxBytes: DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES };
const codecs = createCodecs(decompression);
kafkajs.CompressionCodecs[kafkajs.CompressionTypes.GZIP] = () => codecs.gzip;
kafkajs.CompressionCodecs[kafkajs.CompressionTypes.Snappy] = () => codecs.snappy;
kafkajs.CompressionCodecs[kafkajs.CompressionTypes.LZ4] = () => codecs.lz4;
kafkajs.CompressionCodecs[kafkajs.CompressionTypes.ZSTD] = () => codecs.zstd;

/**
 * Bound on one record batch once decompressed, for every consumer of the process (the codecs belong to the
 * library's kafkajs instance). Set from `forRoot({ maxDecompressedBatchBytes })`.
 */
export function setMaxDecompressedBatchBytes(maxBytes: number): void {
  decompression.maxBytes = maxBytes;
}

const COMPRESSION_TYPES: Record<KafkaCompression, number> = {
  none: kafkajs.CompressionTypes.None,
  gzip: kafkajs.CompressionTypes.GZIP,
  snappy: kafkajs.CompressionTypes.Snappy,
  lz4: kafkajs.CompressionTypes.LZ4,
  zstd: kafkajs.CompressionTypes.ZSTD,
};

/** kafkajs's `compression` value of a send for the option's name. */
export function compressionType(compression: KafkaCompression = 'none'): number {
  return COMPRESSION_TYPES[compression];
}

/**
 * ConsumerGroupDescribe (KIP-848) through an admin of the library's kafkajs instance (the carried admin fix adds
 * it); null when the group's coordinator does not have the API (Kafka before 3.7).
 */
export function describeConsumerGroups(admin: Admin, groupIds: string[]): Promise<ConsumerGroupDescriptions> {
  const extended = admin as Admin & {
    describeConsumerGroups(groupIds: string[]): Promise<ConsumerGroupDescriptions>;
  };
  return extended.describeConsumerGroups(groupIds);
}

/** A module of the library's kafkajs instance, by its path in the package: for the specs that pin the fixes. */
export const kafkajsInternal = loaded.internal;

export type {
  AclEntry,
  Admin,
  Assigner,
  Consumer,
  ConsumerConfig,
  EachBatchPayload,
  GroupDescription,
  GroupMember,
  GroupMemberAssignment,
  ICustomPartitioner,
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

/**
 * kafkajs's `Kafka` client class and enums, from the library's own kafkajs instance (with its carried fixes);
 * `KafkaLogLevel` is kafkajs's `logLevel`.
 */
export const {
  Kafka,
  AssignerProtocol,
  Partitioners,
  CompressionTypes,
  ConfigResourceTypes,
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  ResourcePatternTypes,
  logLevel: KafkaLogLevel,
} = kafkajs;
/** A client of the library's kafkajs instance. */
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
