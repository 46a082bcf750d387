/** The raw kafkajs systems (a, b) build their client and consumer here, with the shared settings. */
import kafkajs from 'kafkajs';
import { CLIENT_RETRY, CONSUMER_TUNING } from './settings.mjs';

const { Kafka, logLevel } = kafkajs;
/** kafkajs as released (also what Nest's transport, system c, requires). */
export const RawKafka = Kafka;

export function rawConsumer(job, clientId) {
  const kafka = new Kafka({ clientId, brokers: job.brokers, logLevel: logLevel.WARN, retry: CLIENT_RETRY });
  return kafka.consumer({
    groupId: job.groupId,
    allowAutoTopicCreation: false,
    ...CONSUMER_TUNING,
    retry: CLIENT_RETRY,
  });
}
