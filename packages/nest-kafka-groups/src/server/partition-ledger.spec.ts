import { describe, expect, jest, test } from '@jest/globals';
import type { DeadLetterWrite } from '../dead-letter/dead-letter-write.js';
import { compareOffsets, PartitionLedger, partitionKey } from './partition-ledger.js';

describe('compareOffsets', () => {
  test.each([
    ['9', '10', -1],
    ['10', '9', 1],
    ['123', '123', 0],
    ['99', '100', -1],
    ['9007199254740993', '9007199254740992', 1],
  ])('%s vs %s', (a, b, sign) => {
    expect(Math.sign(compareOffsets(a, b))).toBe(sign);
  });
});

describe('PartitionLedger', () => {
  const p0 = partitionKey('orders', 0);
  const p1 = partitionKey('orders', 1);

  test('counts attempts per offset', () => {
    const ledger = new PartitionLedger();
    expect(ledger.failureAt(p0, '5')).toBeUndefined();
    ledger.failed(p0, '5', 1);
    ledger.failed(p0, '5', 2);
    expect(ledger.failureAt(p0, '5')?.attempts).toBe(2);
    ledger.settled(p0);
    expect(ledger.hasFailures).toBe(false);
  });

  test('attempts survive a rejoin for a partition still assigned, and are dropped for a revoked one', () => {
    const ledger = new PartitionLedger();
    ledger.failed(p0, '5', 2);
    ledger.failed(p1, '9', 1);
    ledger.joined(new Set([p0]));
    expect(ledger.failureAt(p0, '5')?.attempts).toBe(2);
    expect(ledger.failureAt(p1, '9')).toBeUndefined();
  });

  test('a partition still waiting out its backoff after a rejoin is listed with the time left; others are not', () => {
    const ledger = new PartitionLedger();
    const p2 = partitionKey('orders', 2);
    const p3 = partitionKey('orders', 3);
    ledger.failed(p0, '5', 1).retryAt = 10_000;
    ledger.failed(p1, '9', 1).retryAt = 10_000;
    ledger.failed(p2, '4', 1).retryAt = 2_000;
    const exhausted = ledger.failed(p3, '7', 3);
    exhausted.retryAt = 10_000;
    exhausted.exhausted = new Error('gave up');
    ledger.joined(new Set([p0, p2, p3]));
    // p1 was revoked, p2's backoff is over, p3 only waits for its dead-letter write.
    expect(ledger.waitingRetries(4_000)).toEqual([{ key: p0, delayMs: 6_000 }]);
    ledger.settled(p0);
    expect(ledger.waitingRetries(4_000)).toEqual([]);
  });

  test('attempts survive a crash', () => {
    const ledger = new PartitionLedger();
    ledger.failed(p0, '5', 2);
    ledger.lostPositions();
    expect(ledger.failureAt(p0, '5')?.attempts).toBe(2);
  });

  test('an entry for an older offset is stale once the partition passed it, and is deleted', () => {
    const ledger = new PartitionLedger();
    ledger.failed(p0, '5', 2);
    expect(ledger.failureAt(p0, '6')).toBeUndefined();
    expect(ledger.hasFailures).toBe(false);
  });

  test('an entry for a later offset is kept while older messages are redelivered before it', () => {
    const ledger = new PartitionLedger();
    ledger.failed(p0, '5', 2);
    expect(ledger.failureAt(p0, '3')).toBeUndefined();
    expect(ledger.failureAt(p0, '5')?.attempts).toBe(2);
  });

  test('a failure of a new offset replaces the old entry', () => {
    const ledger = new PartitionLedger();
    ledger.failed(p0, '5', 2);
    const failure = ledger.failed(p0, '8', 1);
    expect(failure).toEqual({ offset: '8', attempts: 1 });
    expect(ledger.failure(p0)).toBe(failure);
  });

  test('the last resolved offset is kept per partition and forgotten on a join or a crash', () => {
    const ledger = new PartitionLedger();
    ledger.setLastResolved(p0, '41');
    ledger.setLastResolved(p1, '7');
    expect(ledger.lastResolved(p0)).toBe('41');
    ledger.joined(new Set([p0, p1]));
    expect(ledger.lastResolved(p0)).toBeUndefined();
    ledger.setLastResolved(p0, '42');
    ledger.lostPositions();
    expect(ledger.lastResolved(p0)).toBeUndefined();
  });
});

describe('PartitionLedger and dead-letter writes', () => {
  const p0 = partitionKey('orders', 0);
  const p1 = partitionKey('orders', 1);
  const write = () => ({ cancel: jest.fn() }) as unknown as DeadLetterWrite & { cancel: jest.Mock };

  test('a revoked partition cancels its pending write; a retained one keeps it', () => {
    const ledger = new PartitionLedger();
    const kept = write();
    const revoked = write();
    ledger.failed(p0, '5', 3).deadLetter = kept;
    ledger.failed(p1, '9', 3).deadLetter = revoked;
    ledger.joined(new Set([p0]));
    expect(kept.cancel).not.toHaveBeenCalled();
    expect(revoked.cancel).toHaveBeenCalledTimes(1);
    expect(ledger.failureAt(p0, '5')?.deadLetter).toBe(kept);
  });

  test('a stale entry cancels its write; shutdown cancels every write', () => {
    const ledger = new PartitionLedger();
    const stale = write();
    const pending = write();
    ledger.failed(p0, '5', 3).deadLetter = stale;
    ledger.failed(p1, '9', 3).deadLetter = pending;
    ledger.failureAt(p0, '6');
    expect(stale.cancel).toHaveBeenCalledTimes(1);
    ledger.cancelDeadLetters();
    expect(pending.cancel).toHaveBeenCalledTimes(1);
  });

  test('shutdown returns the failures whose write was started, for the stop to settle; a failure still retrying is not one', () => {
    const ledger = new PartitionLedger();
    const written = write();
    const pending = write();
    const writtenFailure = ledger.failed(p0, '5', 3);
    writtenFailure.deadLetter = written;
    const pendingFailure = ledger.failed(p1, '9', 3);
    pendingFailure.deadLetter = pending;
    ledger.failed('orders:2', '4', 1);
    const started = [
      { key: p0, failure: writtenFailure },
      { key: p1, failure: pendingFailure },
    ];
    expect(ledger.deadLetterFailures()).toEqual(started);
    expect(written.cancel).not.toHaveBeenCalled();
    expect(ledger.cancelDeadLetters()).toEqual(started);
    expect(written.cancel).toHaveBeenCalledTimes(1);
    expect(pending.cancel).toHaveBeenCalledTimes(1);
  });

  test('an exhausted batch call stays for a partition still assigned, and is dropped for a revoked one', () => {
    const ledger = new PartitionLedger();
    const error = new Error('bulk insert refused');
    ledger.setExhaustedBatch(p0, { from: '3', through: '9', attempts: 3, error });
    ledger.setExhaustedBatch(p1, { from: '0', through: '1', attempts: 3, error });
    ledger.joined(new Set([p0]));
    expect(ledger.exhaustedBatch(p0)).toEqual({ from: '3', through: '9', attempts: 3, error });
    expect(ledger.exhaustedBatch(p1)).toBeUndefined();
    ledger.setExhaustedBatch(p0, undefined);
    expect(ledger.exhaustedBatch(p0)).toBeUndefined();
  });
});

describe('PartitionLedger: a topic deleted (and maybe created again with other records at the same offsets)', () => {
  const p0 = partitionKey('orders', 0);
  const p1 = partitionKey('orders', 1);

  test("forgets the partition's floor, its failure (cancelling its write) and its exhausted batch; others stay", () => {
    const ledger = new PartitionLedger();
    const cancel = jest.fn();
    ledger.setLastResolved(p0, '2');
    ledger.setLastResolved(p1, '7');
    ledger.failed(p0, '3', 3).deadLetter = { cancel } as unknown as DeadLetterWrite;
    ledger.failed(p1, '8', 1);
    const error = new Error('bulk insert refused');
    ledger.setExhaustedBatch(p0, { from: '3', through: '4', attempts: 3, error });
    ledger.topicDeleted(p0);
    expect(ledger.lastResolved(p0)).toBeUndefined();
    expect(ledger.failureAt(p0, '3')).toBeUndefined();
    expect(cancel).toHaveBeenCalledTimes(1);
    expect(ledger.exhaustedBatch(p0)).toBeUndefined();
    expect(ledger.lastResolved(p1)).toBe('7');
    expect(ledger.failureAt(p1, '8')?.attempts).toBe(1);
  });
});
