/**
 * The example service's admin endpoints (src/admin) over real HTTP against a real broker: the bearer token
 * (missing, wrong, right; endpoints off without one), the answers for an unknown group, topic or seek target, and
 * pause / stop / start / seek doing what they say.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { Ctx, Payload } from '@nestjs/microservices';
import { KafkaGroupContext, KafkaHandler, KafkaModule } from 'nest-kafka-groups';
import request from 'supertest';
import { KafkaAdminModule } from '../src/admin/kafka-admin.module.js';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

const TOKEN = 'test-admin-token-0123456789';
const handled: string[] = [];

@Controller()
class RecordingController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext) {
    handled.push(`${ctx.partition}@${ctx.offset}`);
  }
}

function groupModule(groupId: string, topic: string) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic } })],
    controllers: [RecordingController],
  })
  class GroupModule {}
  return GroupModule;
}

describe('admin endpoints: POST /kafka/groups/:id/pause|resume|stop|start|seek', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    handled.length = 0;
  });
  afterAll(() => kafka.closeAll());

  async function startService(groupId: string, topic: string, token: string): Promise<string> {
    @Module({
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          load: [() => ({ KAFKA_ADMIN_TOKEN: token })],
        }),
      ],
    })
    class TestConfigModule {}
    const { app } = await startTestApp([groupModule(groupId, topic)], {}, [
      TestConfigModule,
      KafkaAdminModule,
    ]);
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    return (await app.getUrl()).replace('[::1]', '127.0.0.1');
  }

  test('the token: missing or wrong is 401, right is 200; unknown group 404, bad topic or target 400', async () => {
    const topic = uniqueName('admin');
    const groupId = uniqueName('admin-group');
    await kafka.createTopic(topic, 2);
    const url = await startService(groupId, topic, TOKEN);
    const post = (path: string, auth?: string) => {
      const call = request(url).post(path);
      return auth === undefined ? call : call.set('Authorization', auth);
    };

    const missing = await post(`/kafka/groups/${groupId}/pause`).expect(401);
    expect(missing.body.message).toBe('Send the admin token as "Authorization: Bearer <KAFKA_ADMIN_TOKEN>"');
    const wrong = await post(`/kafka/groups/${groupId}/pause`, `Bearer ${TOKEN}x`).expect(401);
    expect(wrong.body.message).toBe('Invalid admin token');
    await post(`/kafka/groups/${groupId}/pause`, TOKEN).expect(401);
    await post(`/kafka/groups/${groupId}/pause`, `Basic ${TOKEN}`).expect(401);

    const bearer = `Bearer ${TOKEN}`;
    const unknown = await post('/kafka/groups/nope/stop', bearer).expect(404);
    expect(unknown.body.message).toBe(
      `No consumer group "nope" runs in this process (its groups: "${groupId}")`,
    );
    const badTopic = await post(`/kafka/groups/${groupId}/pause`, bearer)
      .send({ topics: ['other'] })
      .expect(400);
    expect(badTopic.body.message).toBe(
      `Consumer group "${groupId}" does not consume topic "other" (its topics: "${topic}")`,
    );
    const badTarget = await post(`/kafka/groups/${groupId}/seek`, bearer)
      .send({ topic, offset: 'first' })
      .expect(400);
    expect(badTarget.body.message).toMatch(
      new RegExp(`^Cannot seek consumer group "${groupId}": offset must be`),
    );
    const badTimestamp = await post(`/kafka/groups/${groupId}/seek`, bearer)
      .send({ topic, timestamp: 'yesterday' })
      .expect(400);
    expect(badTimestamp.body.message).toMatch(/timestamp must be milliseconds since the epoch/);
    const noTopic = await post(`/kafka/groups/${groupId}/seek`, bearer).send({ offset: 0 }).expect(400);
    expect(noTopic.body.message).toEqual(expect.arrayContaining(['topic must be a string']));
    expect(handled).toHaveLength(0);

    const paused = await post(`/kafka/groups/${groupId}/pause`, bearer)
      .send({ topics: [topic] })
      .expect(200);
    expect(paused.body).toMatchObject({ groupId, running: true, pausedTopics: [topic] });
    const resumed = await post(`/kafka/groups/${groupId}/resume`, bearer).expect(200);
    expect(resumed.body.pausedTopics).toEqual([]);
  });

  test('stop, seek from an ISO timestamp, start: the messages from then are handled again', async () => {
    const topic = uniqueName('admin-seek');
    const groupId = uniqueName('admin-seek-group');
    await kafka.createTopic(topic, 2);
    const url = await startService(groupId, topic, TOKEN);
    const post = (path: string) => request(url).post(path).set('Authorization', `Bearer ${TOKEN}`);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 20, (i) => `k${i}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const from = new Date();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await kafka.produceKeyed(topic, 10, (i) => `k${i}`);
    await waitFor('30 handled', 30_000, () => handled.length === 30);

    const stopped = await post(`/kafka/groups/${groupId}/stop`).expect(200);
    expect(stopped.body).toMatchObject({ running: false, members: [{ state: 'stopped' }] });
    const seek = await post(`/kafka/groups/${groupId}/seek`)
      .send({ topic, timestamp: from.toISOString() })
      .expect(200);
    expect(seek.body.groupId).toBe(groupId);
    expect(seek.body.partitions.map((p: { partition: number }) => p.partition)).toEqual([0, 1]);
    const started = await post(`/kafka/groups/${groupId}/start`).expect(200);
    expect(started.body.running).toBe(true);
    await waitFor('the 10 later messages handled again', 30_000, () => handled.length === 40);
    expect(new Set(handled.slice(30))).toEqual(new Set(handled.slice(20, 30)));
  });

  test('without KAFKA_ADMIN_TOKEN the endpoints are off (403), whatever is sent', async () => {
    const topic = uniqueName('admin-off');
    const groupId = uniqueName('admin-off-group');
    await kafka.createTopic(topic, 1);
    const url = await startService(groupId, topic, '');
    for (const auth of [undefined, 'Bearer ', `Bearer ${TOKEN}`]) {
      const call = request(url).post(`/kafka/groups/${groupId}/stop`);
      const response = await (auth === undefined ? call : call.set('Authorization', auth)).expect(403);
      expect(response.body.message).toBe(
        'Admin endpoints are disabled: set KAFKA_ADMIN_TOKEN to enable them',
      );
    }
  });
});
