import { describe, expect, test } from '@jest/globals';
import { Registry } from 'prom-client';
import type { GroupRunner } from '../server/group-runner.js';
import type { KafkaGroupsServer } from '../server/kafka-groups.server.js';
import type { KafkaStatusService } from '../status/kafka-status.service.js';
import type { KafkaGroupOffsets } from '../status/kafka-status.types.js';
import { KafkaMetricsService } from './kafka-metrics.service.js';

function runner(groupId: string, topics: string[], states: string[]): GroupRunner {
  return { groupId, topics, members: states.map((state) => ({ state })) } as unknown as GroupRunner;
}

function setup(
  runners: GroupRunner[],
  offsets: (groupId: string) => Promise<KafkaGroupOffsets>,
  registry?: Registry,
) {
  let observer: unknown;
  const server = {
    groups: runners,
    addObserver: (o: unknown) => (observer = o),
  } as unknown as KafkaGroupsServer;
  const status = { runners, offsets } as unknown as KafkaStatusService;
  const metrics = new KafkaMetricsService(server, status, registry ? { registry } : undefined);
  return { metrics, observer: () => observer };
}

function value(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('KafkaMetricsService', () => {
  const offsets = async (): Promise<KafkaGroupOffsets> => ({
    state: 'Stable',
    groupProtocol: 'classic',
    groupMembers: 2,
    partitions: [
      { topic: 't', partition: 0, committedOffset: 10, logEndOffset: 15, lag: 5 },
      { topic: 't', partition: 1, committedOffset: null, logEndOffset: 3, lag: 3 },
    ],
    owners: new Map(),
    members: [],
  });

  test('registers itself as the transport observer on module init', () => {
    const { metrics, observer } = setup([], offsets);
    metrics.onModuleInit();
    expect(observer()).toBe(metrics);
  });

  test('counts per group/topic/partition, times handlers, and reads lag and members on scrape', async () => {
    const { metrics } = setup([runner('g', ['t'], ['joined', 'joined', 'crashed'])], offsets);
    for (let i = 0; i < 3; i++) metrics.processed('g', 't', 0, 2);
    metrics.processed('g', 't', 1, 2_000);
    metrics.failed('g', 't', 1);
    metrics.failed('g', 't', 1);
    metrics.deadLettered('g', 't', 1);

    const text = await metrics.metrics();
    expect(value(text, 'kafka_consumer_messages_processed_total{group="g",topic="t",partition="0"}')).toBe(3);
    expect(value(text, 'kafka_consumer_messages_processed_total{group="g",topic="t",partition="1"}')).toBe(1);
    expect(value(text, 'kafka_consumer_messages_failed_total{group="g",topic="t",partition="1"}')).toBe(2);
    expect(
      value(text, 'kafka_consumer_messages_dead_lettered_total{group="g",topic="t",partition="1"}'),
    ).toBe(1);
    expect(value(text, 'kafka_consumer_handler_duration_seconds_count{group="g",topic="t"}')).toBe(4);
    expect(
      value(text, 'kafka_consumer_handler_duration_seconds_bucket{le="0.0025",group="g",topic="t"}'),
    ).toBe(3);
    expect(value(text, 'kafka_consumer_handler_duration_seconds_sum{group="g",topic="t"}')).toBeCloseTo(
      2.006,
    );
    expect(value(text, 'kafka_consumer_group_lag{group="g",topic="t",partition="0"}')).toBe(5);
    expect(value(text, 'kafka_consumer_group_lag{group="g",topic="t",partition="1"}')).toBe(3);
    expect(value(text, 'kafka_consumer_group_members{group="g",state="joined"}')).toBe(2);
    expect(value(text, 'kafka_consumer_group_members{group="g",state="crashed"}')).toBe(1);
    expect(value(text, 'kafka_consumer_group_members{group="g",state="starting"}')).toBe(0);

    // Counters keep counting across scrapes.
    metrics.processed('g', 't', 0, 1);
    expect(
      value(
        await metrics.metrics(),
        'kafka_consumer_messages_processed_total{group="g",topic="t",partition="0"}',
      ),
    ).toBe(4);
  });

  test('a group whose offsets cannot be fetched has no lag samples; the others still do', async () => {
    const { metrics } = setup(
      [runner('down', ['t'], ['joined']), runner('up', ['t'], ['joined'])],
      async (groupId) => {
        if (groupId === 'down') throw new Error('broker away');
        return offsets();
      },
    );
    const text = await metrics.metrics();
    expect(text).not.toContain('kafka_consumer_group_lag{group="down"');
    expect(value(text, 'kafka_consumer_group_lag{group="up",topic="t",partition="0"}')).toBe(5);
  });

  test("counts the coordinator's members of a group by how they joined (a KIP-848 member and a classic one)", async () => {
    const member = (memberId: string, protocol: 'classic' | 'consumer' | null) => ({
      memberId,
      clientId: 'c',
      clientHost: '/127.0.0.1',
      assignment: {},
      protocol,
    });
    const { metrics } = setup(
      [runner('mixed', ['t'], ['joined']), runner('down', ['t'], ['joined'])],
      async (g) => {
        if (g === 'down') throw new Error('broker away');
        return {
          ...(await offsets()),
          groupProtocol: 'consumer',
          members: [member('java', 'consumer'), member('nest-1', 'classic'), member('nest-2', 'classic')],
        };
      },
    );
    const text = await metrics.metrics();
    expect(value(text, 'kafka_consumer_group_coordinator_members{group="mixed",protocol="consumer"}')).toBe(
      1,
    );
    expect(value(text, 'kafka_consumer_group_coordinator_members{group="mixed",protocol="classic"}')).toBe(2);
    expect(value(text, 'kafka_consumer_group_coordinator_members{group="mixed",protocol="unknown"}')).toBe(0);
    expect(text).not.toContain('kafka_consumer_group_coordinator_members{group="down"');
  });

  test('asks the broker once per group and scrape for both of its gauges, and again at the next scrape', async () => {
    const asked: string[] = [];
    const { metrics } = setup([runner('g', ['t'], ['joined']), runner('h', ['t'], ['joined'])], async (g) => {
      asked.push(g);
      return offsets();
    });
    const text = await metrics.metrics();
    expect(value(text, 'kafka_consumer_group_lag{group="g",topic="t",partition="0"}')).toBe(5);
    expect(text).toContain('kafka_consumer_group_coordinator_members{group="h"');
    expect(asked.sort()).toEqual(['g', 'h']);
    await metrics.metrics();
    expect(asked).toHaveLength(4);
  });

  test('uses the registry it is given', async () => {
    const registry = new Registry();
    const { metrics } = setup([], offsets, registry);
    expect(metrics.registry).toBe(registry);
    expect(await registry.getSingleMetric('kafka_consumer_messages_processed_total')).toBeDefined();
  });
});
