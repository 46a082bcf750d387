import { describe, expect, it } from '@jest/globals';
import { PartitionOrder } from './partition-order.js';

/** Settles pending promise callbacks. */
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** The outcome of a wait so far: 'first' (its turn came), 'left' (its send() settled first) or 'waiting'. */
function watch(wait: Promise<boolean> | undefined): () => string {
  let outcome = wait ? 'waiting' : 'first';
  void wait?.then((first) => (outcome = first ? 'first' : 'left'));
  return () => outcome;
}

describe('PartitionOrder: one send() at a time per partition, in the order they joined', () => {
  it('the first send() of a partition goes at once; the next waits until the first leaves, then goes', async () => {
    const order = new PartitionOrder<string>();
    order.join('s1', ['p0']);
    order.join('s2', ['p0']);
    expect(order.whenFirst('s1', ['p0'])).toBeUndefined();
    const s2 = watch(order.whenFirst('s2', ['p0']));
    await tick();
    expect(s2()).toBe('waiting');
    order.leave('s1', 'p0');
    await tick();
    expect(s2()).toBe('first');
  });

  it('later send() calls go one by one in the order they joined', async () => {
    const order = new PartitionOrder<string>();
    const turns = ['s1', 's2', 's3', 's4'];
    for (const turn of turns) order.join(turn, ['p0']);
    const went: string[] = [];
    const waits = turns.slice(1).map(async (turn) => {
      await order.whenFirst(turn, ['p0']);
      went.push(turn);
    });
    for (const turn of turns) {
      await tick();
      order.leave(turn, 'p0');
    }
    await Promise.all(waits);
    expect(went).toEqual(['s2', 's3', 's4']);
  });

  it('a send() waiting for two partitions goes only once it is first in both', async () => {
    const order = new PartitionOrder<string>();
    order.join('s1', ['p0']);
    order.join('s2', ['p1']);
    order.join('s3', ['p0', 'p1']);
    const s3 = watch(order.whenFirst('s3', ['p0', 'p1']));
    order.leave('s1', 'p0');
    await tick();
    expect(s3()).toBe('waiting');
    order.leave('s2', 'p1');
    await tick();
    expect(s3()).toBe('first');
  });

  it('partitions without a send() in common do not wait for each other', () => {
    const order = new PartitionOrder<string>();
    order.join('s1', ['p0']);
    order.join('s2', ['p1']);
    expect(order.whenFirst('s2', ['p1'])).toBeUndefined();
  });

  it('two send() calls with the same two partitions, one request per partition each: no deadlock, each in join order', async () => {
    // Per partition one request (their leaders differ); s2's request for p1 must not go before s1's.
    const order = new PartitionOrder<string>();
    order.join('s1', ['p0', 'p1']);
    order.join('s2', ['p0', 'p1']);
    const s2p0 = watch(order.whenFirst('s2', ['p0']));
    const s2p1 = watch(order.whenFirst('s2', ['p1']));
    expect(order.whenFirst('s1', ['p0'])).toBeUndefined();
    expect(order.whenFirst('s1', ['p1'])).toBeUndefined();
    order.leave('s1', 'p1');
    await tick();
    expect([s2p0(), s2p1()]).toEqual(['waiting', 'first']);
    order.leave('s1', 'p0');
    await tick();
    expect(s2p0()).toBe('first');
  });

  it('a send() that settles while waiting leaves its queues: its wait ends unsent, the next send() goes', async () => {
    const order = new PartitionOrder<string>();
    order.join('s1', ['p0']);
    order.join('s2', ['p0']);
    order.join('s3', ['p0']);
    const s2 = watch(order.whenFirst('s2', ['p0']));
    const s3 = watch(order.whenFirst('s3', ['p0']));
    order.leaveAll('s2', ['p0']);
    order.leave('s1', 'p0');
    await tick();
    expect([s2(), s3()]).toEqual(['left', 'first']);
  });

  it('keeps nothing once every send() left', () => {
    const order = new PartitionOrder<string>();
    order.join('s1', ['p0', 'p1']);
    order.join('s2', ['p1']);
    void order.whenFirst('s2', ['p1']);
    expect(order.isEmpty()).toBe(false);
    order.leaveAll('s1', ['p0', 'p1']);
    order.leaveAll('s2', ['p1']);
    expect(order.isEmpty()).toBe(true);
  });
});
