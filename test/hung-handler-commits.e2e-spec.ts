/**
 * One handler that runs long (within maxProcessingTimeMs) or hangs past it ignoring ctx.signal, while its member's
 * other partitions, fetched with it, are handled: what those handlers finished is committed during the hang, within
 * about commitIntervalMs, so a kill then does not redeliver it; the hung record and those after it on its partition
 * are not. See docs/RELIABILITY.md, finding 24.
 *
 * The e2e step's broker: nothing here needs a broker setting of its own.
 */
import { afterAll, afterEach, describe, expect, jest, test } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  type KafkaFeatureOptions,
  type KafkaGroupContext,
  KafkaHandler,
  KafkaModule,
} from 'nest-kafka-groups';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { errorLinesSoFar, expectErrorLines } from './support/error-lines.js';
import { startTestApp } from './support/nest-test-app.js';

jest.setTimeout(60_000);

const PARTITIONS = 4;
/** The partition whose handler blocks, and the offset it blocks on (the records before it on it are handled). */
const HUNG_PARTITION = 0;
const HUNG_OFFSET = 1;
/** Records per partition. */
const RECORDS = 5;
/** The library's default: the bound the other partitions' commits are measured against. */
const COMMIT_INTERVAL_MS = 1_000;
/**
 * kafkajs's default, above the commit interval: the batch's timer, which heartbeats every half of it, must still start
 * the commit within about one interval.
 */
const HEARTBEAT_INTERVAL_MS = 3_000;
/**
 * Room for the hung member to be released, hear of the rebalance at its next heartbeat and rejoin on a loaded machine:
 * past it the coordinator removes the member and its batch handles records the second member handles again.
 */
const REBALANCE_TIMEOUT_MS = 60_000;
/** Far above one commit interval on a loaded machine; without the commits during the hang it never ends. */
const COMMITTED_WITHIN_MS = 10_000;

interface Handled {
  partition: number;
  offset: number;
}

interface Behaviour {
  handled: Handled[];
  /** Resolves the blocked handler (whatever its signal says). */
  held: Promise<void>;
  /** Set when the handler blocks. */
  hung: boolean;
}

function hangingFeature(
  groupId: string,
  topic: string,
  behaviour: Behaviour,
  options: Omit<KafkaFeatureOptions, 'groupId'>,
) {
  @Controller()
  class HangingController {
    @KafkaHandler('${TOPIC}')
    async handle(@Payload() _payload: unknown, @Ctx() ctx: KafkaGroupContext): Promise<void> {
      const offset = Number(ctx.offset);
      if (ctx.partition === HUNG_PARTITION && offset === HUNG_OFFSET) {
        behaviour.hung = true;
        await behaviour.held;
      }
      behaviour.handled.push({ partition: ctx.partition, offset });
    }
  }
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, ...options })],
    controllers: [HangingController],
  })
  class HangingFeature {}
  return HangingFeature;
}

describe('a handler that runs long or hangs: the other partitions of its fetch are committed meanwhile', () => {
  const kafka = new KafkaTestClient({ clientId: 'hung-handler-commits' });
  const apps: INestApplication[] = [];
  const releases: Array<() => void> = [];

  afterEach(async () => {
    // Released whatever happened, or the close would wait for the handler.
    releases.splice(0).forEach((release) => release());
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await kafka.closeAll();
  });

  /**
   * Starts the member, produces RECORDS records to every partition (the hung one last, so the others are fetched
   * no later than the hung record), and waits until the handler blocks and the other partitions were handled.
   * Returns when that was, and the function that releases the handler.
   */
  async function hangWithOthersHandled(prefix: string, maxProcessingTimeMs: number) {
    const topic = uniqueName(prefix);
    const groupId = uniqueName(prefix);
    await kafka.createTopic(topic, PARTITIONS);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    releases.push(release);
    const behaviour: Behaviour = { handled: [], held, hung: false };
    const options = {
      partitionsConsumedConcurrently: PARTITIONS,
      commitIntervalMs: COMMIT_INTERVAL_MS,
      maxProcessingTimeMs,
      consumer: { heartbeatInterval: HEARTBEAT_INTERVAL_MS, rebalanceTimeout: REBALANCE_TIMEOUT_MS },
    };
    const { app } = await startTestApp([hangingFeature(groupId, topic, behaviour, options)]);
    apps.push(app);
    /** A second application in the group, whose handler never blocks. */
    const joinSecond = async () => {
      const second: Behaviour = { handled: [], held: Promise.resolve(), hung: false };
      apps.push((await startTestApp([hangingFeature(groupId, topic, second, options)])).app);
      return second;
    };
    await kafka.waitForStableGroup(groupId, 1);
    const others = [...Array(PARTITIONS).keys()].filter((p) => p !== HUNG_PARTITION);
    const records = (partition: number) =>
      Array.from({ length: RECORDS }, (_, i) => ({ partition, value: JSON.stringify({ partition, i }) }));
    await kafka.produce(topic, others.flatMap(records));
    await kafka.produce(topic, records(HUNG_PARTITION));
    await waitFor(
      'the handler blocked and the other partitions handled',
      30_000,
      () =>
        behaviour.hung &&
        others.every((p) => behaviour.handled.filter((h) => h.partition === p).length === RECORDS),
      10,
    );
    return { topic, groupId, behaviour, release, others, handledAt: Date.now(), joinSecond };
  }

  /** The group's committed offsets, by partition, once the other partitions' reached their ends. */
  async function committedWhileHung(groupId: string, topic: string, others: number[]) {
    const offsets = await waitFor(
      "the other partitions' offsets committed to their ends during the hang",
      COMMITTED_WITHIN_MS,
      async () => {
        const read = await kafka.offsets(groupId, topic);
        return others.every((p) => read[p].committed === RECORDS) ? read : undefined;
      },
      50,
    );
    return offsets.map((o) => o.committed);
  }

  /**
   * After the release: every record committed, each handled once; in order per partition by one member (with two,
   * sorted: which member handled a partition first depends on the assignment).
   */
  async function drained(groupId: string, topic: string, ...behaviours: Behaviour[]) {
    await kafka.waitForCommittedToEnd(groupId, topic);
    const byPartition = [...Array(PARTITIONS).keys()].map((p) => {
      const offsets = behaviours.flatMap((b) =>
        b.handled.filter((h) => h.partition === p).map((h) => h.offset),
      );
      return behaviours.length > 1 ? offsets.sort((a, b) => a - b) : offsets;
    });
    expect(byPartition).toEqual([...Array(PARTITIONS).keys()].map(() => [...Array(RECORDS).keys()]));
  }

  test('a handler running long within maxProcessingTimeMs: the others committed within about commitIntervalMs, the hung record and those after it not', async () => {
    const { topic, groupId, behaviour, release, others, handledAt } = await hangWithOthersHandled(
      'hang-long',
      60_000,
    );
    const committed = await committedWhileHung(groupId, topic, others);
    const tookMs = Date.now() - handledAt;
    // Nothing of the hung partition's batch is committed while it runs: never the hung record or after it.
    expect(committed[HUNG_PARTITION]).toBeLessThanOrEqual(HUNG_OFFSET);
    expect(behaviour.handled.some((h) => h.partition === HUNG_PARTITION && h.offset >= HUNG_OFFSET)).toBe(
      false,
    );
    release();
    await drained(groupId, topic, behaviour);
    console.log(`running long: the other partitions committed ${tookMs} ms after they were handled`);
  });

  test('a handler hung past maxProcessingTimeMs ignoring ctx.signal: one ERROR saying the others are committed, and they are', async () => {
    const overdue =
      /HangingController\.handle on hang-past-[0-9a-f]+\[0\]@1 ran longer than maxProcessingTimeMs \(1000 ms\)/;
    expectErrorLines(overdue);
    const { topic, groupId, behaviour, release, others, handledAt } = await hangWithOthersHandled(
      'hang-past',
      1_000,
    );
    await waitFor('the overdue ERROR', 10_000, () => errorLinesSoFar().some((line) => overdue.test(line)));
    const committed = await committedWhileHung(groupId, topic, others);
    const tookMs = Date.now() - handledAt;
    expect(committed[HUNG_PARTITION]).toBeLessThanOrEqual(HUNG_OFFSET);
    const errors = errorLinesSoFar().filter((line) => overdue.test(line));
    expect(errors).toHaveLength(1);
    // The line says what a kill now would redeliver: this partition's batch, not the other partitions' work.
    expect(errors[0]).toMatch(/what the other partitions' handlers finished is committed meanwhile/);
    release();
    await drained(groupId, topic, behaviour);
    console.log(
      `hung past maxProcessingTimeMs: the other partitions committed by ${tookMs} ms after they were handled`,
    );
  });

  test('a second member joining during the hang: the commits race the rebalance without a crash or an ERROR; once released the member rejoins, nothing lost or handled twice', async () => {
    const { topic, groupId, behaviour, release, others, joinSecond } = await hangWithOthersHandled(
      'hang-rebalance',
      60_000,
    );
    await committedWhileHung(groupId, topic, others);
    const second = await joinSecond();
    const admin = await kafka.admin();
    await waitFor('the group rebalancing, waiting for the hung member', 10_000, async () => {
      const [group] = (await admin.describeGroups([groupId])).groups;
      return group.state === 'PreparingRebalance';
    });
    const during = (await kafka.offsets(groupId, topic)).map((o) => o.committed);
    expect(others.map((p) => during[p])).toEqual(others.map(() => RECORDS));
    release();
    await kafka.waitForStableGroup(groupId, 2);
    // Handled once across both members: the other partitions were committed before they moved.
    await drained(groupId, topic, behaviour, second);
  });
});
