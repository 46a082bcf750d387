/**
 * `nest-kafka-groups/testing`: for tests that read or write the topics a service consumes. Plain kafkajs cannot
 * read snappy, lz4 or zstd batches and decodes headers in quadratic time; these are the library's own kafkajs, with
 * its carried fixes and codecs, so a test sees records exactly as the service does.
 */
export { createKafkaClient } from '../client/kafka-client.factory.js';
export { zstdCompressionAvailable } from '../client/codecs.js';
export { Kafka, KafkaLogLevel } from '../client/kafkajs.js';
