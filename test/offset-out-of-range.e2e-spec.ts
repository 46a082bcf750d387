import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { KafkaHandler, KafkaModule } from 'nest-kafka-groups';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

/**
 * Finding 3 of issue 9: a committed offset that retention deleted (OffsetOutOfRange) must not make the group jump
 * to the log end, skipping every message still retained. `deleteTopicRecords` moves the log start exactly as retention
 * does, at once (the broker checks retention every log.retention.check.interval.ms, 5 min by default).
 */

const handled: number[] = [];

@Controller()
class OutOfRangeController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: { seq: number }) {
    handled.push(payload.seq);
  }
}

function feature(groupId: string, topic: string) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
    controllers: [OutOfRangeController],
  })
  class OutOfRangeFeature {}
  return OutOfRangeFeature;
}

describe('committed offset out of range', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    handled.length = 0;
  });
  afterAll(() => kafka.closeAll());

  async function start(groupId: string, topic: string) {
    // fromBeginning false (the default): where kafkajs reset an out-of-range offset to the log end.
    const { app } = await startTestApp([feature(groupId, topic)], { fromBeginning: false });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    return app;
  }

  test('below the log start (deleted by retention): the group goes on from the earliest retained message', async () => {
    const topic = uniqueName('oor');
    const groupId = uniqueName('oor');
    await kafka.createTopic(topic, 1);
    const first = await start(groupId, topic);
    await kafka.produceKeyed(topic, 5, (i) => `k${i}`);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(handled).toEqual([0, 1, 2, 3, 4]);
    apps.pop();
    await first.close();

    // While the group is away, 10 more arrive and retention deletes up to offset 10: committed 5 < log start 10.
    const producer = await kafka.producer();
    for (let seq = 5; seq < 15; seq++) {
      await producer.send({ topic, messages: [{ key: `k${seq}`, value: JSON.stringify({ seq }) }] });
    }
    const admin = await kafka.admin();
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '10' }] });
    const [{ low }] = await admin.fetchTopicOffsets(topic);
    expect(low).toBe('10');
    handled.length = 0;

    await start(groupId, topic);
    await producer.send({ topic, messages: [{ key: 'k15', value: JSON.stringify({ seq: 15 }) }] });
    await waitFor('seq 15 handled', 20_000, () => handled.includes(15));
    await kafka.waitForCommittedToEnd(groupId, topic);
    // 5..9 were deleted before they were processed (lost to retention, logged); 10..14 were still there.
    expect(handled).toEqual([10, 11, 12, 13, 14, 15]);
  });
});
