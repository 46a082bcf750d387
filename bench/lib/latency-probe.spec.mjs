/** The latency breakdown's arithmetic: the segments add up to each message's latency, and the tail's attribution. */
import { describe, expect, it } from '@jest/globals';
import { breakdown, brokerGcPauses, MessageMarks } from './latency-probe.mjs';

/** 100 messages: each sent at 10 * i, appended 1 ms later; the consumer's fetch covers the append. */
function marks(overrides = () => ({})) {
  const m = new MessageMarks(100);
  for (let i = 0; i < 100; i++) {
    const sent = 10 * i;
    const row = {
      sent,
      append: sent + 1,
      fetchStart: sent,
      fetchEnd: sent + 2,
      handler: sent + 2.5,
      ...overrides(i),
    };
    for (const [name, value] of Object.entries(row)) m[name][i] = value;
  }
  m.count = 100;
  return m;
}

describe('latency breakdown', () => {
  it('splits each latency into produce, wait, fetch and queue, which add up to it', () => {
    // Message 99: appended at 991, the consumer fetched only at 1,020 (busy), response at 1,022, handled at 1,023.
    const b = breakdown(
      marks((i) => (i === 99 ? { fetchStart: 1_020, fetchEnd: 1_022, handler: 1_023 } : {})),
    );
    expect(b.messages).toBe(100);
    expect(b.segments.produce.p50).toBe(1);
    expect(b.segments.waitFetch.p50).toBe(0);
    expect(b.segments.fetch.p50).toBe(1);
    expect(b.segments.queue.p50).toBe(0.5);
    expect(b.tail).toMatchObject({ thresholdMs: 33, messages: 1, e2eMeanMs: 33 });
    expect(b.tail.segmentsMeanMs).toEqual({ produce: 1, waitFetch: 29, fetch: 2, queue: 1 });
    const t = b.tail.segmentsMeanMs;
    expect(t.produce + t.waitFetch + t.fetch + t.queue).toBe(b.tail.e2eMeanMs);
    expect(b.appendToHandler.max).toBe(32);
  });

  it("counts the tail's messages that waited while a commit or a GC pause ran, and the run's events", () => {
    const m = marks((i) => (i === 50 ? { fetchStart: 520, fetchEnd: 522, handler: 523 } : {}));
    const b = breakdown(m, {
      requests: [
        { api: 'OffsetCommit', startAt: 502, endAt: 520 },
        { api: 'OffsetCommit', startAt: 700, endAt: 706 },
        { api: 'Heartbeat', startAt: 10, endAt: 11 },
        { api: 'Fetch', startAt: 0, endAt: 2 },
      ],
      gcs: [{ startAt: 300, endAt: 303, kind: 'minor' }],
    });
    expect(b.tail.messages).toBe(1);
    expect(b.tail.overlapping.commit).toEqual({ messages: 1, meanMs: 18 });
    expect(b.tail.overlapping.gc).toEqual({ messages: 0, meanMs: 0 });
    expect(b.events.commits.count).toBe(2);
    expect(b.events.commits.ms.max).toBe(18);
    expect(b.events.heartbeats.count).toBe(1);
    expect(b.events.fetches.count).toBe(1);
    expect(b.events.gc).toMatchObject({ count: 1, totalMs: 3, byKind: { minor: { count: 1 } } });
  });

  it("counts the tail's messages that a broker GC pause held between their send and their handler", () => {
    // Message 50: sent at 500, appended only at 512 (the broker paused 501-511), handled at 514.
    const m = marks((i) => (i === 50 ? { append: 512, fetchStart: 500, fetchEnd: 513, handler: 514 } : {}));
    const b = breakdown(m, {
      brokerGcs: [
        { startAt: 501, endAt: 511 },
        { startAt: 5_000, endAt: 5_004 },
      ],
    });
    expect(b.tail.messages).toBe(1);
    expect(b.tail.overlapping.brokerGc).toEqual({ messages: 1, meanMs: 10 });
    expect(b.tail.overlapping.gc).toEqual({ messages: 0, meanMs: 0 });
    expect(b.events.brokerGc).toMatchObject({ count: 1, totalMs: 10 });
    // Without a broker log there is nothing to count, not zero pauses.
    expect(breakdown(m).events.brokerGc).toBeUndefined();
  });
});

describe('broker GC log', () => {
  it("reads each safepoint's end and total (reaching it included) from the JVM's unified log, whatever the collector", () => {
    const log = [
      '[2026-12-02T05:18:56.977+0000] Using Shenandoah',
      '[2026-12-02T05:18:56.977+0000][5.954s][info][safepoint   ] Safepoint "ShenandoahInitMark", Time since last: 867570 ns, Reaching safepoint: 2138468 ns, Cleanup: 7165 ns, At safepoint: 126850 ns, Total: 2272483 ns',
      '[2026-12-02T05:18:57.000+0000] GC(3) Pause Init Mark (unload classes) 0.127ms',
      '[2026-12-02T05:18:57.100+0000] Safepoint "Cleanup", Time since last: 123298429 ns, Reaching safepoint: 6474 ns, Cleanup: 20987 ns, At safepoint: 313507 ns, Total: 340968 ns',
      // JDK 21+ (here ZGC on 25) adds the leaving time and the threads after the total.
      '[2026-12-02T05:18:58.000+0000][3.565s][info][safepoint   ] Safepoint "ZMarkStartYoungAndOld", Time since last: 1395951000 ns, Reaching safepoint: 2067478 ns, At safepoint: 67808 ns, Leaving safepoint: 24240 ns, Total: 2159526 ns, Threads: 1 runnable, 81 total',
    ].join('\n');
    const end = Date.parse('2026-12-02T05:18:56.977Z');
    // The collector's own pause lines are not counted a second time.
    expect(brokerGcPauses(log)).toEqual([
      { startAt: end - 2.272483, endAt: end },
      { startAt: end + 123 - 0.340968, endAt: end + 123 },
      { startAt: end + 1023 - 2.159526, endAt: end + 1023 },
    ]);
  });

  it("reads each pause's end and duration from a log of the collector's lines alone, other lines ignored", () => {
    const log = [
      '[2026-12-02T02:14:20.929+0000] Using G1',
      '[2026-12-02T02:14:20.929+0000] GC(80) Pause Young (Normal) (G1 Evacuation Pause) 223M->86M(256M) 12.081ms',
      '[2026-12-02T02:14:21.000+0000][1001.3s] GC(81) Pause Remark 90M->90M(256M) 0.500ms',
      '[2026-12-02T02:14:22.000+0000] GC(81) Concurrent Mark Cycle 40.000ms',
    ].join('\n');
    const end = Date.parse('2026-12-02T02:14:20.929Z');
    expect(brokerGcPauses(log)).toEqual([
      { startAt: end - 12.081, endAt: end },
      { startAt: end + 71 - 0.5, endAt: end + 71 },
    ]);
  });
});
