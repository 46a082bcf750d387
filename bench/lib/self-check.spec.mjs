/** The benchmark's checks of its own work: each run against its data set, and the soak verdict. */
import { describe, expect, it } from '@jest/globals';
import { Tracker, verifyRecording } from './child.mjs';
import kafkajs from 'kafkajs';
import { datasetChecksum, flightPosition, prepareLatencyMessages, stampPrefix } from './dataset.mjs';
import { DeliveryTally } from './delivery-tally.mjs';
import { compareSummaries, summarizeNodes } from './heap-snapshot.mjs';
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
  const MB = 2 ** 20;
  /**
   * A soak of 1M messages: a running sample every 10k messages (`rss`, `heapUsed` between collections, in MB at
   * `m` messages) and an after-GC sample every 50k (`heap`, `external` after a forced GC).
   */
  const soak = ({
    rss = () => 200,
    between = () => 60,
    heap = () => 30,
    external = () => 15,
    afterGc = true,
  } = {}) => [
    ...Array.from({ length: 101 }, (_, i) => {
      const m = i * 10_000;
      return { messages: m, rss: rss(m) * MB, heapUsed: between(m) * MB, external: 20 * MB };
    }),
    ...(afterGc
      ? Array.from({ length: 21 }, (_, i) => {
          const m = i * 50_000;
          return {
            messages: m,
            afterGc: true,
            rss: 180 * MB,
            heapUsed: heap(m) * MB,
            external: external(m) * MB,
          };
        })
      : []),
  ];
  /** V8's sawtooth between collections: up 70 MB over 150k messages, then back down. */
  const sawtooth = (low, height) => (m) => low + ((m % 150_000) / 150_000) * height;

  it('is flat for the sawtooth of V8 collections in RSS and the heap while what a GC leaves stays put', () => {
    const verdict = soakVerdict(soak({ rss: sawtooth(180, 90), between: sawtooth(40, 70) }), 1_000_000);
    expect(verdict.judgedBy).toBe('after-gc');
    expect(verdict.growing).toEqual([]);
    expect(verdict.flat).toBe(true);
  });

  it('is flat when RSS rose once and settled (allocator arenas, V8 heap sizing) with heap and external flat', () => {
    // 30 MB between 40 % and 50 %, then level: the medians are over the allowance, the last half is not rising.
    const verdict = soakVerdict(
      soak({ rss: (m) => 200 + Math.min(30, Math.max(0, m - 400_000) * (30 / 100_000)) }),
      1_000_000,
    );
    expect(verdict.rssGrowthMB).toBeGreaterThan(verdict.allowedGrowthMB);
    expect(verdict.flat).toBe(true);
  });

  it('is growing when the heap left after a GC climbs by a few MB, though RSS and the heap between GCs do not', () => {
    // 7 bytes per message, under the noise of every other figure; the last 10 % (partitions running dry, less in
    // flight) drops back below the start and is not taken into account.
    const verdict = soakVerdict(
      soak({
        rss: sawtooth(180, 90),
        between: sawtooth(40, 70),
        heap: (m) => (m < 900_000 ? 30 + m * (7 / 1_000_000) : 23),
      }),
      1_000_000,
    );
    expect(verdict.heapAfterGcLateMB - verdict.heapAfterGcEarlyMB).toBeLessThan(4);
    expect(verdict.heapAfterGcFittedGrowthMB).toBeGreaterThan(4);
    expect(verdict.growing).toEqual(['heap']);
    expect(verdict.flat).toBe(false);
  });

  it('is growing when external memory left after a GC climbs (Buffers kept)', () => {
    const verdict = soakVerdict(soak({ external: (m) => 15 + m * (32 / 1_000_000) }), 1_000_000);
    expect(verdict.growing).toEqual(['external']);
    expect(verdict.flat).toBe(false);
  });

  it('is growing when RSS keeps rising through the last half while heap and external stay put (native memory)', () => {
    const verdict = soakVerdict(soak({ rss: (m) => 200 + m * (40 / 1_000_000) }), 1_000_000);
    expect(verdict.growing).toEqual(['rss']);
    expect(verdict.flat).toBe(false);
  });

  it('judges by RSS alone without after-GC samples (--soak-no-gc)', () => {
    const steady = soakVerdict(soak({ afterGc: false, rss: sawtooth(180, 90) }), 1_000_000);
    expect(steady.judgedBy).toBe('rss');
    expect(steady.heapAfterGcEarlyMB).toBeUndefined();
    expect(steady.flat).toBe(true);
    const climbing = soakVerdict(soak({ afterGc: false, rss: (m) => 200 + m * (40 / 1_000_000) }), 1_000_000);
    expect(climbing.growing).toEqual(['rss']);
  });

  it('reads RSS from the running samples only, not from those after a forced GC', () => {
    const verdict = soakVerdict(soak({ rss: () => 250 }), 1_000_000);
    expect(verdict.rssEarlyMB).toBe(250);
    expect(verdict.rssLateMB).toBe(250);
    // 200k to 850k: the last 10 % is left out (partitions run dry, less in flight).
    expect(verdict.afterGcSamples).toBe(14);
  });
});

describe('heap snapshot comparison', () => {
  /** A snapshot in V8's format: nodes as [type, name, self_size, edge_count] rows. */
  const snapshot = (rows) => ({
    snapshot: {
      meta: {
        node_fields: ['type', 'name', 'self_size', 'edge_count'],
        node_types: [['hidden', 'array', 'string', 'object', 'code', 'closure']],
      },
    },
    strings: ['Map', 'BatchWatch', 'onFlight', 'x'],
    nodes: rows.flatMap(([type, name, size]) => [type, name, size, 0]),
  });

  it('counts objects by constructor and other nodes by type, and lists what was added first', () => {
    const before = summarizeNodes(
      snapshot([
        [3, 0, 80],
        [3, 1, 40],
        [5, 2, 32],
        [2, 3, 20],
      ]),
    );
    const after = summarizeNodes(
      snapshot([
        [3, 0, 80],
        [3, 0, 80],
        [3, 1, 40],
        [5, 2, 32],
        [4, 3, 500],
      ]),
    );
    expect(after.get('object:Map')).toEqual({ count: 2, size: 160 });
    expect(after.get('(code)')).toEqual({ count: 1, size: 500 });
    const rows = compareSummaries(before, after);
    // Most added first; among equal counts, the larger growth first.
    expect(rows.slice(0, 2).map((r) => [r.kind, r.countDelta, r.sizeDelta])).toEqual([
      ['(code)', 1, 500],
      ['object:Map', 1, 80],
    ]);
    expect(rows.find((r) => r.kind === 'object:BatchWatch').countDelta).toBe(0);
    expect(rows.at(-1)).toEqual({
      kind: '(string)',
      countBefore: 1,
      countAfter: 0,
      countDelta: -1,
      sizeDelta: -20,
    });
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

  it("is built by the generator from its prepared parts as the data set's message, to the byte, in the partition kafkajs's default partitioner picks", () => {
    const { keys, rests, partitionOf } = prepareLatencyMessages(6_000, 6);
    const partitioner = kafkajs.Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 6 }, (_, partitionId) => ({ partitionId, leader: 0 }));
    const seen = new Set();
    for (const seq of [0, 1, 4_999, 5_000, 5_999]) {
      for (const extra of [{ sentAt: 1_764_600_000_000.125 }, { sentAt: 1_764_600_000_001, warm: true }]) {
        const expected = flightPosition(seq, extra);
        expect(keys[seq]).toBe(expected.key);
        expect(stampPrefix(extra) + rests[seq]).toBe(expected.value);
      }
      expect(partitionOf[seq]).toBe(
        partitioner({ topic: 't', partitionMetadata, message: { key: keys[seq], value: rests[seq] } }),
      );
    }
    for (const partition of partitionOf) seen.add(partition);
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
