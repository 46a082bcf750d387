import kafkajs from 'kafkajs';
import { type KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';

/**
 * Waits until the log cleaner has compacted partition 0 of `topic` below `firstLive`: its first record read from
 * offset 0 is at `firstLive` or above. The cleaner runs every `log.cleaner.backoff.ms` (15 s by default), a dynamic
 * broker setting, lowered on each broker meanwhile and put back after.
 */
export async function waitForCompaction(
  kafka: KafkaTestClient,
  topic: string,
  firstLive: number,
): Promise<void> {
  const admin = await kafka.admin();
  const { brokers } = await admin.describeCluster();
  const cleanerBackoff = (value: string) =>
    admin.alterConfigs({
      validateOnly: false,
      resources: brokers.map(({ nodeId }) => ({
        type: kafkajs.ConfigResourceTypes.BROKER,
        name: String(nodeId),
        configEntries: [{ name: 'log.cleaner.backoff.ms', value }],
      })),
    });
  await cleanerBackoff('500');
  const reader = kafka.consumer({ groupId: uniqueName('cleaner-probe') });
  try {
    await reader.connect();
    await reader.subscribe({ topic, fromBeginning: true });
    let first: number | undefined;
    await reader.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (batch.messages.length > 0) first ??= Number(batch.messages[0].offset);
      },
    });
    let readAt = Date.now();
    await waitFor(`the cleaner compacting ${topic} below offset ${firstLive}`, 60_000, () => {
      if (first !== undefined && first >= firstLive) return true;
      if (Date.now() - readAt > 500) {
        first = undefined;
        readAt = Date.now();
        reader.seek({ topic, partition: 0, offset: '0' });
      }
      return false;
    });
  } finally {
    await reader.disconnect();
    await cleanerBackoff('15000');
  }
}
