/**
 * `KafkaGroups.seek` against a real broker: a replay from a timestamp handles exactly the messages from then once
 * more (once across the group's members); a member of another process in the group makes the seek fail naming it,
 * and the group goes on as before; a stopped group stays stopped with its new offsets.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  KafkaGroupContext,
  KafkaGroupNotEmptyError,
  KafkaGroups,
  KafkaHandler,
  KafkaModule,
  KafkaSeekTargetError,
} from 'nest-kafka-groups';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

const deliveries: { seq: number; partition: number; offset: string }[] = [];

@Controller()
class RecordingController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext) {
    deliveries.push({ seq: payload.seq, partition: ctx.partition, offset: ctx.offset });
  }
}

function groupModule(groupId: string, topic: string, concurrency = 1) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, concurrency })],
    controllers: [RecordingController],
  })
  class GroupModule {}
  return GroupModule;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** seq -> how many times it was handled. */
function timesHandled(): Map<number, number> {
  const times = new Map<number, number>();
  for (const { seq } of deliveries) times.set(seq, (times.get(seq) ?? 0) + 1);
  return times;
}

describe('KafkaGroups.seek', () => {
  const kafka = new KafkaTestClient({ clientId: 'e2e' });
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    deliveries.length = 0;
  });
  afterAll(() => kafka.closeAll());

  async function start(groupId: string, topic: string, concurrency = 1) {
    const { app } = await startTestApp([groupModule(groupId, topic, concurrency)]);
    apps.push(app);
    return app.get(KafkaGroups);
  }

  test('a replay from a timestamp handles exactly the messages from then once more, once across the group', async () => {
    const topic = uniqueName('seek-replay');
    const groupId = uniqueName('seek-replay-group');
    await kafka.createTopic(topic, 3);
    const groups = await start(groupId, topic, 2);
    await kafka.waitForStableGroup(groupId, 2);

    await kafka.produceKeyed(topic, 150, (i) => `k${i}`);
    await sleep(50);
    const from = Date.now();
    await sleep(50);
    await kafka.produceKeyed(
      topic,
      150,
      (i) => `k${i}`,
      (i) => ({ seq: 150 + i }),
    );
    await waitFor('300 handled', 30_000, () => deliveries.length === 300);
    await kafka.waitForCommittedToEnd(groupId, topic);

    const result = await groups.seek(groupId, { topic, timestamp: from });
    expect(result.groupId).toBe(groupId);
    expect(result.partitions.map((p) => p.partition)).toEqual([0, 1, 2]);
    await waitFor('the 150 later messages handled again', 30_000, () => deliveries.length === 450);
    await kafka.waitForCommittedToEnd(groupId, topic);
    await sleep(500);

    const times = timesHandled();
    const expected = new Map(Array.from({ length: 300 }, (_, seq) => [seq, seq < 150 ? 1 : 2]));
    expect([...times].sort(([a], [b]) => a - b)).toEqual([...expected]);
    expect(groups.isRunning(groupId)).toBe(true);
  });

  test('a member of another process in the group: the seek fails naming it, and the group goes on', async () => {
    const topic = uniqueName('seek-busy');
    const groupId = uniqueName('seek-busy-group');
    await kafka.createTopic(topic, 2);
    const groups = await start(groupId, topic);
    const outsider = kafka.consumer({ groupId });
    await outsider.connect();
    await outsider.subscribe({ topics: [topic], fromBeginning: true });
    await outsider.run({ eachMessage: async () => undefined });
    const stable = await kafka.waitForStableGroup(groupId, 2);
    const before = await kafka.offsets(groupId, topic);

    const seeking = groups.seek(groupId, { topic, offset: 'earliest' }, { emptyTimeoutMs: 2_000 });
    await expect(seeking).rejects.toThrow(KafkaGroupNotEmptyError);
    const error = (await seeking.catch((e: unknown) => e)) as KafkaGroupNotEmptyError;
    const outsiderMember = stable.members.find((m) => m.clientId === 'e2e')!;
    expect(error.groupId).toBe(groupId);
    expect(error.members.map((m) => m.memberId)).toEqual([outsiderMember.memberId]);
    expect(error.message).toContain(`Cannot seek consumer group "${groupId}": it is not Empty after 2000 ms`);
    expect(error.message).toContain(`${outsiderMember.memberId} (client "e2e" on`);

    // Nothing was committed, and this process's member is back in the group.
    expect(await kafka.offsets(groupId, topic)).toEqual(before);
    expect(groups.isRunning(groupId)).toBe(true);
    await kafka.waitForStableGroup(groupId, 2);
    await outsider.disconnect();
  });

  test('a stopped group stays stopped, with the offsets of the seek; a bad target changes nothing', async () => {
    const topic = uniqueName('seek-stopped');
    const groupId = uniqueName('seek-stopped-group');
    await kafka.createTopic(topic, 2);
    const groups = await start(groupId, topic);
    await kafka.produceKeyed(topic, 40, (i) => `k${i}`);
    await waitFor('40 handled', 30_000, () => deliveries.length === 40);
    const ends = await kafka.waitForCommittedToEnd(groupId, topic);
    await groups.stop(groupId);

    await expect(groups.seek(groupId, { topic, partition: 5, offset: 0 })).rejects.toThrow(
      `Cannot seek consumer group "${groupId}": partition 5 does not exist: topic "${topic}" has partitions 0..1`,
    );
    await expect(groups.seek(groupId, { topic, offset: 10_000 })).rejects.toThrow(KafkaSeekTargetError);
    expect(await kafka.offsets(groupId, topic)).toEqual(ends);

    const result = await groups.seek(groupId, { topic, partition: 1, offset: 'earliest' });
    expect(result.partitions).toEqual([{ partition: 1, offset: '0' }]);
    const after = await kafka.offsets(groupId, topic);
    expect(after).toEqual([ends[0], { ...ends[1], committed: 0 }]);
    expect(groups.isRunning(groupId)).toBe(false);
    await sleep(500);
    expect(deliveries).toHaveLength(40);

    await groups.start(groupId);
    await waitFor('partition 1 handled again', 30_000, () => deliveries.length === 40 + ends[1].end);
    expect(deliveries.slice(40).every((d) => d.partition === 1)).toBe(true);
  });
});
