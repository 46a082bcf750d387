/** The benchmark's checks of its own work: each run against its data set, and the soak verdict. */
import { describe, expect, it } from '@jest/globals';
import { Tracker, verifyRecording } from './child.mjs';
import { datasetChecksum, flightPosition } from './dataset.mjs';
import { DeliveryTally } from './delivery-tally.mjs';
import { soakVerdict } from './stats.mjs';

/** Two partitions of 3 messages (offsets 10-12 and 0-2), seq 0-5, `alt` 1 each. */
function tracker() {
  const job = {
    kind: 'throughput',
    total: 6,
    firstOffsets: { 0: '10', 1: '0' },
    lastOffsets: { 0: '12', 1: '2' },
    expectedChecksum: 6,
  };
  return new Tracker(job, () => undefined);
}

const flight = (seq) => ({ seq, alt: 1 });

describe('benchmark run against its data set', () => {
  it('passes a run that saw every offset and message once', () => {
    const t = tracker();
    [10, 11, 12].forEach((offset, i) => t.record(0, String(offset), flight(i)));
    [0, 1, 2].forEach((offset, i) => t.record(1, String(offset), flight(3 + i)));
    expect(t.complete).toBe(true);
    expect(t.verify()).toEqual({
      ok: true,
      problems: [],
      missingOffsets: 0,
      duplicateOffsets: 0,
      missingSeqs: 0,
      duplicateSeqs: 0,
    });
  });

  it('counts a lost message and a duplicate apart, though the message count matches the data set', () => {
    const t = tracker();
    t.record(0, '10', flight(0));
    t.record(0, '10', flight(0)); // redelivered
    t.record(0, '12', flight(2)); // offset 11 (seq 1) never seen
    [0, 1, 2].forEach((offset, i) => t.record(1, String(offset), flight(3 + i)));
    expect(t.count).toBe(6);
    const verification = t.verify();
    expect(verification).toMatchObject({
      ok: false,
      missingOffsets: 1,
      duplicateOffsets: 1,
      missingSeqs: 1,
      duplicateSeqs: 1,
    });
    expect(verification.problems).toEqual([
      '1 offset(s) never seen {"0":1}',
      '1 offset(s) seen more than once',
      '1 message seq(s) never seen',
      '1 message seq(s) seen more than once',
    ]);
    expect(t.result().duplicates).toBe(1);
  });

  it('fails a message outside the data set and a value that does not add up to its checksum', () => {
    const t = tracker();
    [10, 11, 12].forEach((offset, i) => t.record(0, String(offset), flight(i)));
    t.record(1, '0', flight(3));
    t.record(1, '1', { seq: 4, alt: 7 });
    t.record(1, '2', flight(5));
    t.record(1, '3', flight(9));
    expect(t.verify().problems).toEqual(['2 message(s) outside the data set', 'checksum 13, data set 6']);
  });
});

describe("a run recorded by system j's JVM", () => {
  const job = tracker().job;
  const marks = (...counts) => Buffer.from(counts).toString('base64');

  it('passes when the marks say every offset and seq was seen once and the checksum adds up', () => {
    const recording = {
      seenOffsets: { 0: marks(1, 1, 1), 1: marks(1, 1, 1) },
      seenSeqs: marks(1, 1, 1, 1, 1, 1),
      unexpected: 0,
      checksum: 6,
    };
    expect(verifyRecording(job, recording).ok).toBe(true);
  });

  it('fails a redelivered offset and a lost one with the same problems as a Node run', () => {
    const recording = {
      seenOffsets: { 0: marks(2, 0, 1), 1: marks(1, 1, 1) },
      seenSeqs: marks(2, 0, 1, 1, 1, 1),
      unexpected: 1,
      checksum: 6,
    };
    expect(verifyRecording(job, recording).problems).toEqual([
      '1 offset(s) never seen {"0":1}',
      '1 offset(s) seen more than once',
      '1 message seq(s) never seen',
      '1 message seq(s) seen more than once',
      '1 message(s) outside the data set',
    ]);
  });

  it('refuses marks that do not cover the data set', () => {
    const recording = {
      seenOffsets: { 0: marks(1, 1), 1: marks(1, 1, 1) },
      seenSeqs: marks(1),
      unexpected: 0,
      checksum: 6,
    };
    expect(() => verifyRecording(job, recording)).toThrow('partition 0: 2 offset marks recorded, 3 expected');
  });
});

describe('scale traffic tally', () => {
  it('passes when every message sent was handled once', () => {
    const t = new DeliveryTally();
    [0, 1, 2].forEach((seq) => t.handled(seq, `t:0:${seq}`));
    expect(t.tally(3)).toEqual({ produced: 3, lost: 0, redelivered: 0, writtenTwice: 0 });
  });

  it('counts a message never handled as lost, also past what was ever seen', () => {
    const t = new DeliveryTally();
    t.handled(0, 't:0:0');
    t.handled(2, 't:0:2');
    expect(t.tally(2000).lost).toBe(1998);
  });

  it("tells a consumer's redelivery (same offset) from a producer's second write (same seq, another offset)", () => {
    const t = new DeliveryTally();
    t.handled(0, 't:0:0');
    t.handled(0, 't:0:0'); // redelivered after a rebalance
    t.handled(1, 't:1:5');
    t.handled(1, 't:1:6'); // the producer retried a written request
    expect(t.tally(2)).toEqual({ produced: 2, lost: 0, redelivered: 1, writtenTwice: 1 });
  });
});

describe('soak verdict', () => {
  /** RSS samples every 10k messages of 1M, `rssAt(messages)` in MB. */
  const samples = (rssAt) =>
    Array.from({ length: 101 }, (_, i) => ({
      messages: i * 10_000,
      rss: rssAt(i * 10_000) * 2 ** 20,
      heapUsed: 50 * 2 ** 20,
    }));

  it('is flat for RSS that only moves within the noise', () => {
    const verdict = soakVerdict(
      samples((m) => 100 + ((m / 10_000) % 2) * 4),
      1_000_000,
    );
    expect(verdict.flat).toBe(true);
  });

  it('is growing for a steady climb whose medians stay within the allowance but whose slope does not', () => {
    // 20 MB over the 800k messages after warm-up: the medians (30 % and 90 %) are 15 MB apart, under 16 MB.
    const verdict = soakVerdict(
      samples((m) => 100 + Math.max(0, m - 200_000) * (20 / 800_000)),
      1_000_000,
    );
    expect(verdict.rssGrowthMB).toBeLessThanOrEqual(verdict.allowedGrowthMB);
    expect(verdict.fittedGrowthMB).toBeCloseTo(20, 0);
    expect(verdict.flat).toBe(false);
  });

  it('reads the retained heap and external memory from the samples after a forced GC, apart from the others', () => {
    const running = samples(() => 200);
    const settled = Array.from({ length: 21 }, (_, i) => ({
      messages: i * 50_000,
      afterGc: true,
      rss: 100 * 2 ** 20,
      heapUsed: (i * 50_000 < 800_000 ? 30 : 34) * 2 ** 20,
      external: 15 * 2 ** 20,
    }));
    const verdict = soakVerdict([...running, ...settled], 1_000_000);
    expect(verdict.rssEarlyMB).toBe(200);
    expect(verdict.rssLateMB).toBe(200);
    expect(verdict.afterGcSamples).toBe(17);
    expect(verdict.heapAfterGcEarlyMB).toBe(30);
    expect(verdict.heapAfterGcLateMB).toBe(34);
    expect(verdict.externalAfterGcEarlyMB).toBe(15);
    expect(verdict.externalAfterGcLateMB).toBe(15);
  });
});

describe('data set checksum', () => {
  it('is the sum of the altitudes the runs read from the messages themselves', () => {
    let sum = 0;
    for (let seq = 0; seq < 500; seq++) sum += JSON.parse(flightPosition(seq).value).alt;
    expect(datasetChecksum(500)).toBe(sum);
    expect(Number.isSafeInteger(datasetChecksum(500))).toBe(true);
  });
});

describe('a latency message', () => {
  it("is the data set's message with the generator's stamp first, as JSON", () => {
    for (const seq of [0, 4_999, 5_000, 123_457]) {
      const plain = flightPosition(seq);
      const stamped = flightPosition(seq, { sentAt: 1_764_600_000_000.125, warm: true });
      expect(stamped.key).toBe(plain.key);
      const value = JSON.parse(stamped.value);
      expect(Object.keys(value).slice(0, 3)).toEqual(['sentAt', 'warm', 'seq']);
      expect(value).toEqual({ sentAt: 1_764_600_000_000.125, warm: true, ...JSON.parse(plain.value) });
    }
  });
});
