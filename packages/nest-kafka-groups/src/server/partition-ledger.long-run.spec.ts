import { describe, expect, jest, test } from '@jest/globals';
import type { DeadLetterWrite } from '../dead-letter/dead-letter-write.js';
import { PartitionLedger, partitionKey } from './partition-ledger.js';

/**
 * A member runs for weeks: what its ledger holds must stay bounded by the partitions it owns, however many offsets,
 * failures, dead letters and rebalances go by. Every key the run ever used is checked through the ledger's own
 * accessors, so an entry left behind for any of them shows.
 */
describe('PartitionLedger over a long run', () => {
  const topics = ['orders', 'payments'];
  const keys = topics.flatMap((topic) => Array.from({ length: 6 }, (_, p) => partitionKey(topic, p)));
  const write = () => ({ cancel: jest.fn() }) as unknown as DeadLetterWrite & { cancel: jest.Mock };

  /** What the ledger remembers for one partition. */
  const held = (ledger: PartitionLedger, key: string) => ({
    failure: ledger.failure(key) !== undefined,
    resolved: ledger.lastResolved(key) !== undefined,
    batch: ledger.exhaustedBatch(key) !== undefined,
  });

  test('holds at most one failure per owned partition and nothing for a revoked one, over 120 generations', () => {
    const ledger = new PartitionLedger();
    const writes: ReturnType<typeof write>[] = [];
    const leftFailing = new Set<string>();
    const kept = { owned: 0, revoked: 0 };
    let offset = 0;
    for (let generation = 0; generation < 120; generation++) {
      // Every other rebalance moves half of the partitions away; the ones in between keep them.
      const assigned = new Set(keys.filter((_, i) => (i + Math.floor(generation / 2)) % 2 === 0));
      ledger.joined(assigned);
      for (const key of keys) {
        const state = held(ledger, key);
        expect(state.resolved).toBe(false);
        if (!assigned.has(key)) expect(state).toEqual({ failure: false, resolved: false, batch: false });
        else expect(state.failure).toBe(leftFailing.has(key));
        if (leftFailing.has(key)) kept[assigned.has(key) ? 'owned' : 'revoked']++;
      }
      leftFailing.clear();
      for (const key of assigned) {
        for (let i = 0; i < 100; i++, offset++) {
          const at = String(offset);
          const failure = ledger.failureAt(key, at);
          if (offset % 50 === 7 && failure === undefined) {
            // Fails once, then succeeds on its retry.
            ledger.failed(key, at, 1).retryAt = offset;
            expect(ledger.failureAt(key, at)?.attempts).toBe(1);
            ledger.settled(key);
          } else if (offset % 400 === 11) {
            // Exhausted: dead-lettered, then settled once the record is in.
            const exhausted = ledger.failed(key, at, 3);
            exhausted.exhausted = new Error('gave up');
            exhausted.deadLetter = write();
            writes.push(exhausted.deadLetter as ReturnType<typeof write>);
            ledger.settled(key);
          } else if (i === 99 && generation % 3 === 0) {
            // Left failing when the generation ends: a rejoin keeps it for an owned partition, drops it otherwise.
            ledger.failed(key, at, 2).deadLetter = write();
            leftFailing.add(key);
          }
          if (offset % 1_000 === 500)
            ledger.setExhaustedBatch(key, { from: at, through: at, attempts: 3, error: new Error('batch') });
          if (offset % 1_000 === 600) ledger.setExhaustedBatch(key, undefined);
          ledger.setLastResolved(key, at);
        }
      }
      for (const key of keys) if (!assigned.has(key)) expect(held(ledger, key).failure).toBe(false);
    }
    expect(offset).toBe(120 * 6 * 100);
    expect(kept.owned).toBeGreaterThan(0);
    expect(kept.revoked).toBeGreaterThan(0);
    // Settled writes were never cancelled; what was left failing is cancelled only when its partition moved.
    expect(writes.every((w) => w.cancel.mock.calls.length === 0)).toBe(true);
    ledger.joined(new Set());
    expect(ledger.hasFailures).toBe(false);
    expect(ledger.deadLetterFailures()).toEqual([]);
    expect(ledger.waitingRetries(0)).toEqual([]);
    for (const key of keys)
      expect(held(ledger, key)).toEqual({ failure: false, resolved: false, batch: false });
  });
});
