/**
 * `nest-kafka-groups`: the module, decorators, transport server, message context, producer, status and errors.
 * The health indicator (needs @nestjs/terminus) and the Prometheus metrics (need prom-client) are the subpaths
 * `nest-kafka-groups/health` and `nest-kafka-groups/metrics`, so this entry loads neither optional peer.
 */
export { KafkaModule, KafkaFeatureModule } from './kafka.module.js';
export { KafkaGroupsServer } from './server/kafka-groups.server.js';
export {
  KafkaGroups,
  type KafkaGroupControlStatus,
  type KafkaSeekOptions,
} from './control/kafka-groups.service.js';
export type { KafkaSeekResult, KafkaSeekTarget } from './control/seek-target.js';
export { KafkaUnknownGroupError } from './errors/kafka-unknown-group.error.js';
export { KafkaUnknownGroupTopicError } from './errors/kafka-unknown-group-topic.error.js';
export { KafkaGroupsShuttingDownError } from './errors/kafka-groups-shutting-down.error.js';
export { KafkaSeekTargetError } from './errors/kafka-seek-target.error.js';
export {
  type KafkaConsumerProtocolMember,
  KafkaConsumerProtocolGroupError,
} from './errors/kafka-consumer-protocol-group.error.js';
export {
  KafkaGroupNotEmptyError,
  type KafkaGroupMemberDescription,
} from './errors/kafka-group-not-empty.error.js';
export type { MemberState } from './server/consumer-member.js';
export type { MemberObserver } from './server/member-observer.js';
export type { KafkaGroupsStatus } from './server/groups-status.js';
export type {
  KafkaRebalanceEvent,
  KafkaRebalanceListener,
  KafkaTopicPartition,
} from './server/rebalance-listener.js';
export { KafkaHandler } from './decorators/kafka-handler.decorator.js';
export { KafkaKey, KafkaMessageHeaders } from './decorators/kafka-message-params.decorator.js';
export { KafkaGroupContext } from './context/kafka-group.context.js';
export { KafkaBatchContext, KafkaBatchRecord } from './context/kafka-batch.context.js';
export { KafkaBatchFailedError } from './errors/kafka-batch-failed.error.js';
export { KafkaProducer, type KafkaOutgoingMessage } from './producer/kafka.producer.js';
export { KAFKA_CLIENT, KAFKA_GROUPS_TRANSPORT, KAFKA_MODULE_OPTIONS } from './kafka.constants.js';
export type {
  KafkaCompression,
  KafkaConsumerTuning,
  KafkaDeadLetterOptions,
  KafkaFeatureAsyncOptions,
  KafkaFeatureOptions,
  KafkaFeatureOptionsFactory,
  KafkaGroupDefaults,
  KafkaHandlerOptions,
  KafkaMessageLimits,
  KafkaModuleAsyncOptions,
  KafkaModuleOptions,
  KafkaOptionsFactory,
  KafkaRestartBackoff,
  KafkaRetryOptions,
  KafkaTopicOptions,
} from './kafka.options.js';
export { DLT_HEADERS, DLT_STUB_HEADERS } from './dead-letter/dead-letter-headers.js';
export { RETRY_TOPIC_HEADERS } from './retry/retry-topic-headers.js';
export { KafkaRetryTopicError } from './errors/kafka-retry-topic.error.js';
export { KafkaGroupsError } from './errors/kafka-groups.error.js';
export { KafkaConfigurationError } from './errors/kafka-configuration.error.js';
export { KafkaHandlerDefinitionError } from './errors/kafka-handler-definition.error.js';
export { KafkaDecoratorMetadataError } from './errors/kafka-decorator-metadata.error.js';
export { KafkaNonRetryableError } from './errors/kafka-non-retryable.error.js';
export { KafkaPayloadDecodeError } from './errors/kafka-payload-decode.error.js';
export { KafkaMessageLimitError } from './errors/kafka-message-limit.error.js';
export { DEFAULT_LIMITS } from './kafka.options.js';
export { printable } from './logging/printable.js';
export { KafkaGuardRejectedError } from './errors/kafka-guard-rejected.error.js';
export { KafkaDeadLetterError } from './errors/kafka-dead-letter.error.js';
export { KafkaHandlerTimeoutError } from './errors/kafka-handler-timeout.error.js';
export { KafkaHandlerFailedWithoutReasonError } from './errors/kafka-handler-failed-without-reason.error.js';
export { KafkaProducerError } from './errors/kafka-producer.error.js';
export { KafkaConnectCancelledError } from './errors/kafka-connect-cancelled.error.js';
export { KafkaCoordinatorNotReadyError } from './errors/kafka-coordinator-not-ready.error.js';
export { KafkaMissingTopicError } from './errors/kafka-missing-topic.error.js';
export { KafkaAuthenticationError } from './errors/kafka-authentication.error.js';
export { KafkaAuthorizationError } from './errors/kafka-authorization.error.js';
export {
  authenticationFailureOf,
  authorizationFailureOf,
  securityIdentityOf,
  type AuthorizationContext,
  type SecurityIdentity,
} from './client/security-failures.js';
export { KafkaBatchDecodeError } from './errors/kafka-batch-decode.error.js';
export { KafkaClientCompatibilityError } from './errors/kafka-client-compatibility.error.js';
export {
  KafkaGroupProtocolError,
  type KafkaGroupProtocolInUse,
} from './errors/kafka-group-protocol.error.js';
export {
  INTEROP_ASSIGNERS,
  RangeAssigner,
  RoundRobinInteropAssigner,
  KafkajsRoundRobinAssigner,
} from './assignors/interop.assigners.js';
export { KafkaStatusModule } from './status/kafka-status.module.js';
export { KafkaStatusService } from './status/kafka-status.service.js';
export {
  KafkaAdminClient,
  KafkaAdminClosedError,
  KafkaAdminTimeoutError,
} from './status/kafka-admin.client.js';
export type {
  KafkaGroupMember,
  KafkaGroupOffsets,
  KafkaGroupProtocol,
  KafkaGroupStatus,
  KafkaLocalGroupStatus,
  KafkaMemberStatus,
  KafkaMessageCounts,
  KafkaPartitionStatus,
  KafkaStoppedPartition,
} from './status/kafka-status.types.js';
