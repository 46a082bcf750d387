/**
 * `nest-kafka-groups/testing`: for an application's own tests against a real broker.
 * - The local broker launcher: Apache Kafka (KRaft) from the Maven jars on a JDK 17+, no Docker (`ensureBroker`
 *   in a jest globalSetup, `stopBroker` in its teardown; clusters and node kills for broker-loss tests).
 * - `KafkaTestClient`: create topics, produce, read a topic, wait until a group is Stable with every partition
 *   assigned, wait until a group committed up to the log end.
 * - The library's own kafkajs (`createKafkaClient`, `Kafka`): plain kafkajs cannot read snappy, lz4 or zstd batches
 *   and decodes headers in quadratic time; with these a test sees records exactly as the service does.
 */
export { createKafkaClient } from '../client/kafka-client.factory.js';
export { zstdCompressionAvailable } from '../client/codecs.js';
export { Kafka, KafkaLogLevel } from '../client/kafkajs.js';
export {
  KafkaTestClient,
  type KafkaTestClientOptions,
  type PartitionOffsets,
  TEST_CONSUMER_TUNING,
  TEST_RETRY,
  testBrokers,
  uniqueName,
  waitFor,
} from './kafka-test-client.js';
export {
  brokerCredentials,
  brokerStatus,
  createAcls,
  ensureBroker,
  isBrokerReachable,
  KafkaLocalError,
  type KafkaLocalNode,
  type KafkaLocalSecurityOptions,
  type KafkaLocalSettings,
  killNode,
  localSettings,
  resolveJars,
  restartBroker,
  startBroker,
  startBrokerOnSameData,
  type StartBrokerOptions,
  type StartedBroker,
  startNode,
  stopBroker,
  stopBrokerKeepData,
  stopNode,
} from './kafka-local.js';
export {
  ADMIN_USER,
  allow,
  type KafkaLocalCredentials,
  type KafkaLocalSecurityMode,
  mtlsClientConfig,
  SASL_MECHANISMS,
  saslClientConfig,
} from './kafka-local-security.js';
