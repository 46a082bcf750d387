/**
 * System b: raw kafkajs `eachBatch`, the upper bound for this client. The same loop as this project's consumer
 * member without Nest: offset resolved after each message, heartbeat between messages, kafkajs commits per batch.
 */
import { runChild, watchKafkajs } from '../lib/child.mjs';
import { rawConsumer, RawKafka } from '../lib/kafkajs-client.mjs';

watchKafkajs(RawKafka);

await runChild(async (job, tracker) => {
  const consumer = rawConsumer(job, 'bench-b');
  await consumer.connect();
  await consumer.subscribe({ topics: [job.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: true,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: job.partitionsConsumedConcurrently,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      const { partition } = batch;
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) return;
        tracker.record(partition, message.offset, JSON.parse(message.value.toString()), message.timestamp);
        resolveOffset(message.offset);
        await heartbeat();
      }
    },
  });
  return () => consumer.disconnect();
});
