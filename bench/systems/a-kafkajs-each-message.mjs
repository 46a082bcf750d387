/** System a: raw kafkajs `eachMessage` with auto-commit (kafkajs commits the resolved offsets after each batch). */
import { runChild, watchKafkajs } from '../lib/child.mjs';
import { rawConsumer, RawKafka } from '../lib/kafkajs-client.mjs';

watchKafkajs(RawKafka);

await runChild(async (job, tracker) => {
  const consumer = rawConsumer(job, 'bench-a');
  await consumer.connect();
  await consumer.subscribe({ topics: [job.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: true,
    partitionsConsumedConcurrently: job.partitionsConsumedConcurrently,
    eachMessage: async ({ partition, message }) => {
      tracker.record(partition, message.offset, JSON.parse(message.value.toString()), message.timestamp);
    },
  });
  return () => consumer.disconnect();
});
