/**
 * A broker whose group coordinator does not run the consumer group protocol (KIP-848): Kafka 3.7 to 3.9 as
 * configured by default, or 4.x with `group.coordinator.rebalance.protocols=classic` or `group.version=0`. It still
 * lists ConsumerGroupDescribe in ApiVersions, and answers it with UNSUPPORTED_VERSION for every group. The library
 * asks it about every group DescribeGroups calls Dead (a group that does not exist, or no longer does), for status,
 * metrics and a seek's wait for an empty group: that answer must read as a broker without the API, not fail them.
 *
 * The spec turns the test broker's `group.version` feature down to 0 (Kafka's FeatureCommand from the broker's jars)
 * and back up to what it was after.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { KafkaStatusModule, KafkaStatusService } from 'nest-kafka-groups';
import { KafkaTestClient, testBrokers, uniqueName } from 'nest-kafka-groups/testing';
import { kafkaTool } from './support/java/java-consumer.js';
import { javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

/** Kafka's kafka-features.sh (its main class on the broker's jars) against the test broker; rejects on failure. */
async function featureCommand(...args: string[]): Promise<string> {
  const run = await kafkaTool('org.apache.kafka.tools.FeatureCommand', testBrokers(), args);
  if (run.code !== 0) throw new Error(`FeatureCommand ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run.stdout;
}

async function groupVersion(): Promise<number> {
  const described = await featureCommand('describe');
  const level = /Feature: group\.version\s.*FinalizedVersionLevel: (\d+)/.exec(described);
  if (!level) throw new Error(`no group.version in:\n${described}`);
  return Number(level[1]);
}

const describeJava = javaAvailable() ? describe : describe.skip;

describeJava(
  'a broker without the consumer group protocol (ConsumerGroupDescribe answered UNSUPPORTED_VERSION)',
  () => {
    const kafka = new KafkaTestClient({ clientId: 'e2e-protocol-off' });
    let app: INestApplication | undefined;
    let restoreTo: number | undefined;

    beforeAll(async () => {
      const before = await groupVersion();
      if (before !== 0) {
        await featureCommand('downgrade', '--feature', 'group.version=0');
        restoreTo = before;
      }
      expect(await groupVersion()).toBe(0);
    }, 180_000);

    afterAll(async () => {
      await app?.close();
      await kafka.closeAll();
      if (restoreTo !== undefined) await featureCommand('upgrade', '--feature', `group.version=${restoreTo}`);
    }, 180_000);

    test('status of a group that does not exist: Dead, no protocol, no members', async () => {
      const topic = uniqueName('protocol-off-status');
      await kafka.createTopic(topic, 1);
      ({ app } = await startTestApp([], {}, [KafkaStatusModule]));
      const offsets = await app.get(KafkaStatusService).offsets(uniqueName('protocol-off-none'), [topic]);
      expect(offsets).toMatchObject({ state: 'Dead', groupProtocol: null, groupMembers: 0, members: [] });
    }, 120_000);
  },
);
