import { describe, expect, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import {
  describePartitions,
  type KafkaRebalanceEvent,
  type KafkaRebalanceListener,
  MemberRebalanceListeners,
  partitionsOf,
} from './rebalance-listener.js';

class Recorder implements KafkaRebalanceListener {
  readonly calls: [string, KafkaRebalanceEvent][] = [];
  onPartitionsAssigned(event: KafkaRebalanceEvent) {
    this.calls.push(['assigned', event]);
  }
  onPartitionsRevoked(event: KafkaRebalanceEvent) {
    this.calls.push(['revoked', event]);
  }
  onPartitionsLost(event: KafkaRebalanceEvent) {
    this.calls.push(['lost', event]);
  }
}

class Failing implements KafkaRebalanceListener {
  onPartitionsRevoked(): Promise<void> {
    return Promise.reject(new Error('flush failed'));
  }
}

class CapturingLogger extends Logger {
  readonly errors: string[] = [];
  override error(message: unknown): void {
    this.errors.push(String(message));
  }
}

describe('MemberRebalanceListeners', () => {
  test('partitions are sorted by topic then partition; an empty assignment is no partitions', () => {
    expect(partitionsOf({ b: [1, 0], a: [2] })).toEqual([
      { topic: 'a', partition: 2 },
      { topic: 'b', partition: 0 },
      { topic: 'b', partition: 1 },
    ]);
    expect(describePartitions(partitionsOf({ b: [1, 0], a: [2] }))).toBe('a[2], b[0,1]');
    expect(describePartitions([])).toBe('no partitions');
  });

  test('each assignment ends with exactly one revoked or lost of the same partitions; a second give-up is no call', async () => {
    const recorder = new Recorder();
    const member = new MemberRebalanceListeners([recorder], 'g', 1, new CapturingLogger());
    await member.assigned('m-1', { t: [0, 1] });
    await member.givenUp(true);
    await member.givenUp(false);
    await member.assigned('m-1', { t: [1] });
    await member.givenUp(false);
    expect(
      recorder.calls.map(([kind, e]) => [kind, e.memberId, e.memberIndex, e.groupId, e.partitions]),
    ).toEqual([
      [
        'assigned',
        'm-1',
        1,
        'g',
        [
          { topic: 't', partition: 0 },
          { topic: 't', partition: 1 },
        ],
      ],
      [
        'revoked',
        'm-1',
        1,
        'g',
        [
          { topic: 't', partition: 0 },
          { topic: 't', partition: 1 },
        ],
      ],
      ['assigned', 'm-1', 1, 'g', [{ topic: 't', partition: 1 }]],
      ['lost', 'm-1', 1, 'g', [{ topic: 't', partition: 1 }]],
    ]);
  });

  test('a join whose predecessor was never given up reports that one lost first', async () => {
    const recorder = new Recorder();
    const member = new MemberRebalanceListeners([recorder], 'g', 0, new CapturingLogger());
    await member.assigned('m-1', { t: [0] });
    await member.assigned('m-2', {});
    expect(recorder.calls.map(([kind, e]) => [kind, e.memberId, e.partitions.length])).toEqual([
      ['assigned', 'm-1', 1],
      ['lost', 'm-1', 1],
      ['assigned', 'm-2', 0],
    ]);
  });

  test('a listener that throws is logged with group, member and partitions; the next listener still runs', async () => {
    const recorder = new Recorder();
    const logger = new CapturingLogger();
    const member = new MemberRebalanceListeners([new Failing(), recorder], 'orders', 0, logger);
    await member.assigned('m-1', { orders: [3] });
    await expect(member.givenUp(true)).resolves.toBeUndefined();
    expect(recorder.calls.map(([kind]) => kind)).toEqual(['assigned', 'revoked']);
    expect(logger.errors).toEqual([
      'Failing.onPartitionsRevoked failed for group "orders" member 0 (m-1) on orders[3]: flush failed; the rebalance goes on',
    ]);
  });

  test('calls run one after the other, in the order they were made', async () => {
    const order: string[] = [];
    let release!: () => void;
    const slow: KafkaRebalanceListener = {
      onPartitionsAssigned: () =>
        new Promise<void>((resolve) => (release = resolve)).then(() => void order.push('assigned')),
      onPartitionsRevoked: () => void order.push('revoked'),
    };
    const member = new MemberRebalanceListeners([slow], 'g', 0, new CapturingLogger());
    const assigned = member.assigned('m', { t: [0] });
    const revoked = member.givenUp(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]);
    release();
    await Promise.all([assigned, revoked]);
    expect(order).toEqual(['assigned', 'revoked']);
  });
});
