import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Controller, Injectable, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  type KafkaGroupContext,
  KafkaHandler,
  KafkaModule,
  type KafkaRebalanceListener,
} from 'nest-kafka-groups';
import { KafkaTestClient, TEST_CONSUMER_TUNING, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';

/**
 * Review of the rebalance listener: its calls run in the member's join path. Java's consumer (and Spring's
 * ConsumerRebalanceListener on it) keeps heartbeating from its heartbeat thread while a listener runs, so a listener
 * is bounded by max.poll.interval.ms, not by the session timeout. Here a first onPartitionsAssigned that takes longer
 * than the session timeout (a cache loaded for the partitions, as the README's example does).
 */
/**
 * Both tests wait out a session (and the second a rebalance timeout): shorter ones than the test tuning's, still
 * seven heartbeats to a session, keep what they prove and halve the wait.
 */
const TUNING = { ...TEST_CONSUMER_TUNING, sessionTimeout: 3_000, rebalanceTimeout: 4_000 };

describe('rebalance listener slower than the session timeout (review)', () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
  });
  afterAll(() => kafka.closeAll());

  test('a first onPartitionsAssigned longer than sessionTimeout: the member keeps its session, nothing is lost', async () => {
    const topic = uniqueName('slow-listener');
    const groupId = uniqueName('slow-listener');
    await kafka.createTopic(topic, 1);
    const seen: string[] = [];
    let slow = true;

    @Injectable()
    class SlowListener implements KafkaRebalanceListener {
      async onPartitionsAssigned() {
        seen.push('assigned');
        if (!slow) return;
        slow = false;
        // Within the rebalance timeout's order of magnitude, half again the session timeout.
        await new Promise((resolve) => setTimeout(resolve, TUNING.sessionTimeout * 1.5));
      }
      onPartitionsRevoked() {
        seen.push('revoked');
      }
      onPartitionsLost() {
        seen.push('lost');
      }
    }

    @Controller()
    class SlowListenerController {
      @KafkaHandler('${TOPIC}')
      handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext) {
        seen.push(`message@${ctx.offset}`);
      }
    }

    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId,
          topicVariables: { TOPIC: topic },
          rebalanceListener: SlowListener,
        }),
      ],
      controllers: [SlowListenerController],
      providers: [SlowListener],
    })
    class SlowListenerModule {}

    await kafka.produceKeyed(topic, 1, () => 'k');
    const { app } = await startTestApp([SlowListenerModule], { consumer: TUNING });
    apps.push(app);
    await waitFor('the message handled', 60_000, () => seen.includes('message@0'));
    // Let a heartbeat round go by: an eviction during the listener shows up as lost then assigned again.
    await new Promise((resolve) => setTimeout(resolve, TUNING.heartbeatInterval * 3));
    expect(seen).toEqual(['assigned', 'message@0']);
  }, 90_000);

  test('an onPartitionsAssigned that hangs: the member stops heartbeating after rebalanceTimeout, the other member takes its partitions', async () => {
    const topic = uniqueName('hung-listener');
    const groupId = uniqueName('hung-listener');
    await kafka.createTopic(topic, 2);
    const handled = new Map<string, string>();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let hung = false;

    function member(app: 'a' | 'b') {
      @Injectable()
      class Listener implements KafkaRebalanceListener {
        onPartitionsAssigned() {
          // b's first assignment never ends on its own (until the test ends).
          if (app !== 'b') return;
          hung = true;
          return released;
        }
      }

      @Controller()
      class Handler {
        @KafkaHandler('${TOPIC}')
        handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext) {
          handled.set(`${ctx.partition}@${ctx.offset}`, app);
        }
      }

      @Module({
        imports: [
          KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, rebalanceListener: Listener }),
        ],
        controllers: [Handler],
        providers: [Listener],
      })
      class MemberModule {}
      return MemberModule;
    }

    try {
      apps.push((await startTestApp([member('a')], { consumer: TUNING })).app);
      await kafka.waitForStableGroup(groupId, 1);
      apps.push((await startTestApp([member('b')], { consumer: TUNING })).app);
      await waitFor('b hung in its listener', 30_000, () => hung);
      await kafka.waitForStableGroup(groupId, 2);
      await kafka.produceKeyed(topic, 10, (i) => `k${i}`);
      // b joined and hangs in its listener: without heartbeats beyond the rebalance timeout its session ends, and a
      // gets b's partition (bounded as Java's max.poll.interval.ms bounds a listener).
      await waitFor('every record handled', 60_000, () => handled.size === 10);
      expect(new Set(handled.values())).toEqual(new Set(['a']));
    } finally {
      release();
    }
  }, 120_000);
});
