/**
 * A broker whose group coordinator does not run the consumer group protocol (KIP-848): Kafka 3.7 to 3.9 as
 * configured by default, or 4.x with `group.coordinator.rebalance.protocols=classic` or `group.version=0`. It still
 * lists ConsumerGroupDescribe in ApiVersions, and answers it with UNSUPPORTED_VERSION for every group. The library
 * asks it about every group DescribeGroups calls Dead (a group that does not exist, or no longer does): status and a
 * seek must go on as with a broker without the API, not fail on that answer.
 *
 * The spec turns the test broker's `group.version` feature down to 0 (Kafka's FeatureCommand from the broker's jars)
 * and back up to what it was after.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import {
  KafkaGroups,
  KafkaHandler,
  KafkaModule,
  KafkaStatusModule,
  KafkaStatusService,
} from 'nest-kafka-groups';
import { KafkaTestClient, testBrokers, uniqueName } from 'nest-kafka-groups/testing';
import { KAFKA_LIB } from './support/java/java-consumer.js';
import { javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';

/** Kafka's kafka-features.sh (its main class on the broker's jars) against the test broker; rejects on failure. */
function featureCommand(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'java',
      [
        '-Xmx256m',
        '-XX:TieredStopAtLevel=1',
        '-cp',
        join(KAFKA_LIB, '*'),
        'org.apache.kafka.tools.FeatureCommand',
        '--bootstrap-server',
        testBrokers().join(','),
        ...args,
      ],
      { timeout: 90_000 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`FeatureCommand ${args.join(' ')}: ${stderr || error.message}`))
          : resolve(stdout),
    ),
  );
}

async function groupVersion(): Promise<number> {
  const described = await featureCommand('describe');
  const level = /Feature: group\.version\s.*FinalizedVersionLevel: (\d+)/.exec(described);
  if (!level) throw new Error(`no group.version in:\n${described}`);
  return Number(level[1]);
}

let handled = 0;

@Controller()
class IdleController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() _payload: unknown): void {
    handled++;
  }
}

function idleFeature(groupId: string, topic: string) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
    controllers: [IdleController],
  })
  class IdleFeatureModule {}
  return IdleFeatureModule;
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
      const groupId = uniqueName('protocol-off-none');
      const { app: started } = await startTestApp([], {}, [KafkaStatusModule]);
      app = started;
      const offsets = await app.get(KafkaStatusService).offsets(groupId, [topic]);
      expect(offsets).toMatchObject({ state: 'Dead', groupProtocol: null, groupMembers: 0, members: [] });
      await app.close();
      app = undefined;
    }, 120_000);

    test('a seek of a group that never committed (Dead once its member left) moves its offsets', async () => {
      const topic = uniqueName('protocol-off-seek');
      await kafka.createTopic(topic, 1);
      await kafka.produce(topic, [{ value: '{}' }, { value: '{}' }, { value: '{}' }]);
      const groupId = uniqueName('protocol-off-seek-group');
      // fromBeginning false: the member starts at the log end and handles nothing, so the group commits nothing.
      const { app: started } = await startTestApp([idleFeature(groupId, topic)], { fromBeginning: false });
      app = started;
      await kafka.waitForStableGroup(groupId, 1);
      expect(handled).toBe(0);
      const result = await app
        .get(KafkaGroups)
        .seek(groupId, { topic, offset: 'earliest' }, { emptyTimeoutMs: 10_000 });
      expect(result.partitions).toEqual([{ partition: 0, offset: '0' }]);
      // Started again from the new offset: the three records written before the group's first start are handled.
      await kafka.waitForCommittedToEnd(groupId, topic);
      expect(handled).toBe(3);
      await app.close();
      app = undefined;
    }, 120_000);
  },
);
