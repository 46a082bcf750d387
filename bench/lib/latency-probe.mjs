/**
 * Where a message's end-to-end latency goes, in the latency phase. The topic is created with
 * `message.timestamp.type=LogAppendTime`, so every record carries the broker's append time (whole milliseconds, the
 * broker's clock, which is this machine's clock). With the time the consumer's fetch that brought the record started
 * and ended, each message's `handler - sentAt` splits into four segments that add up to it:
 *
 * - produce: `append - sent` (the producer's send and the broker's append; the append time is truncated to the
 *   millisecond, so this reads 0-1 ms low);
 * - waitFetch: `fetchStart - append` when the record was on the broker before the consumer asked for it (the
 *   consumer was busy elsewhere: processing the previous fetch, a commit or heartbeat in its fetch loop, a pause);
 * - fetch: `fetchEnd - max(append, fetchStart)`: the broker holding the fetch until data came, the response on the
 *   wire and its decoding;
 * - queue: `handler - fetchEnd`: the fetched batches waiting for a worker, and the messages before it in its batch.
 *
 * Node systems: the consumer's own instrumentation events (kafkajs's FETCH_START / FETCH, REQUEST for the commit and
 * heartbeat round trips) and a GC observer. System j sends the same marks from its poll loop (fetch start and end =
 * the poll call and its return, commits = commitSync).
 */
import { readFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

const now = () => performance.timeOrigin + performance.now();

/** Sampling interval of the event loop's delay, ms. */
const LOOP_DELAY_RESOLUTION_MS = 10;

/** Requests whose round trips are listed (the others are counted only). */
const TRACKED_APIS = new Set(['Fetch', 'OffsetCommit', 'Heartbeat']);

const GC_KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export class LatencyProbe {
  fetchStartAt = 0;
  fetchEndAt = 0;
  fetches = 0;
  /** { api, startAt, endAt } per tracked request, wall-clock ms. */
  requests = [];
  /** { startAt, endAt, kind } per GC, wall-clock ms. */
  gcs = [];

  constructor() {
    this.gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const startAt = performance.timeOrigin + entry.startTime;
        this.gcs.push({
          startAt,
          endAt: startAt + entry.duration,
          kind: GC_KINDS[entry.detail?.kind] ?? 'other',
        });
      }
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
    // Each sample is a timer wake-up of the consumer's process, which takes a core from the broker and the
    // generator: a coarse resolution keeps the probe's own share small (docs/BENCHMARKS.md, the per-fetch cost),
    // at the price of missing blocks of the loop shorter than it.
    this.loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
    this.loopDelay.enable();
  }

  /** Listens to a kafkajs consumer's instrumentation events (kafkajs as released, or the library's instance). */
  watch(consumer) {
    const { FETCH_START, FETCH, REQUEST } = consumer.events;
    consumer.on(FETCH_START, () => {
      this.fetchStartAt = now();
    });
    consumer.on(FETCH, () => {
      this.fetchEndAt = now();
      this.fetches++;
    });
    consumer.on(REQUEST, ({ payload }) => {
      if (!TRACKED_APIS.has(payload.apiName)) return;
      const endAt = now();
      // kafkajs times requests with Date.now(): whole milliseconds.
      this.requests.push({ api: payload.apiName, startAt: endAt - payload.duration, endAt });
    });
  }

  /** Makes every consumer that this kafkajs `Kafka` class creates from now on report to the probe. */
  watchClient(Kafka) {
    const consumer = Kafka.prototype.consumer;
    const watch = (created) => this.watch(created);
    Kafka.prototype.consumer = function probedConsumer(...args) {
      const created = consumer.apply(this, args);
      watch(created);
      return created;
    };
  }

  stop() {
    this.gcObserver.disconnect();
    this.loopDelay.disable();
  }

  /** The marks of the run (what system j's JVM sends as well). */
  marks() {
    return {
      requests: this.requests,
      gcs: this.gcs,
      loopDelayMs: {
        p50: this.loopDelay.percentile(50) / 1e6,
        p99: this.loopDelay.percentile(99) / 1e6,
        max: this.loopDelay.max / 1e6,
      },
    };
  }
}

/** Per-message marks, filled by the tracker: one slot per measured message. */
export class MessageMarks {
  constructor(size) {
    this.sent = new Float64Array(size);
    this.append = new Float64Array(size);
    this.fetchStart = new Float64Array(size);
    this.fetchEnd = new Float64Array(size);
    this.handler = new Float64Array(size);
    this.count = 0;
  }
}

const SEGMENTS = ['produce', 'waitFetch', 'fetch', 'queue'];

function quantile(sorted, q) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary(values) {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  };
}

function overlap(aStart, aEnd, bStart, bEnd) {
  return Math.max(0, Math.min(aEnd, bEnd) - Math.max(aStart, bStart));
}

/**
 * The broker's pauses from its unified JVM log, as { startAt, endAt } in wall-clock ms. A broker the harness starts
 * logs its safepoints (`-Xlog:safepoint:file=<path>:time`, bench/run.mjs): every stop of its Java threads, whatever
 * the collector (G1's young collections; ZGC's and Shenandoah's short pauses, which `-Xlog:gc` does not list; the
 * VM's own operations), each from the moment the VM began to bring the threads to the safepoint, since a thread
 * still running toward it holds no request either. Each line is written when the safepoint ends, stamped with the
 * machine's clock and giving its total in ns. A log without safepoint lines (a reused broker started with
 * `-Xlog:gc:file=<path>:time`) gives its collector's pause lines instead, each ending in its duration in ms.
 */
export function brokerGcPauses(logText) {
  const endOf = (stamp) => Date.parse(stamp.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  const pauses = [];
  for (const match of logText.matchAll(/^\[([^\]]+)\].*\bSafepoint "[^"]*".*\bTotal: (\d+) ns/gm)) {
    const endAt = endOf(match[1]);
    if (Number.isFinite(endAt)) pauses.push({ startAt: endAt - Number(match[2]) / 1e6, endAt });
  }
  if (pauses.length) return pauses;
  for (const match of logText.matchAll(/^\[([^\]]+)\].*\bPause\b.*?([\d.]+)ms$/gm)) {
    const endAt = endOf(match[1]);
    if (Number.isFinite(endAt)) pauses.push({ startAt: endAt - Number(match[2]), endAt });
  }
  return pauses;
}

/** The pauses logged so far at `path` (a latency job's `brokerGcLog`), or undefined without a log to read. */
export function readBrokerGcPauses(path) {
  if (!path) return undefined;
  try {
    return brokerGcPauses(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The breakdown of a run: `appendToHandler` (p50, p99, max, mean), each segment over all messages (p50, p99, max, mean), the same over the tail (the
 * messages at or above the run's p99), and for the tail how many messages waited while a commit, a heartbeat or a
 * GC pause of the consumer was under way between their append and their handler, or a GC pause of the broker
 * between their send and their handler (it holds the append and the fetch alike) (`overlapping`: messages and mean
 * overlap). `events` summarises the round trips and GC pauses of the whole measured window.
 */
export function breakdown(marks, { requests = [], gcs = [], brokerGcs, loopDelayMs } = {}) {
  const n = marks.count;
  const e2e = new Float64Array(n);
  const appendToHandler = new Float64Array(n);
  const parts = Object.fromEntries(SEGMENTS.map((s) => [s, new Float64Array(n)]));
  for (let i = 0; i < n; i++) {
    const sent = marks.sent[i];
    const append = marks.append[i];
    const start = marks.fetchStart[i];
    const end = marks.fetchEnd[i];
    const handler = marks.handler[i];
    e2e[i] = handler - sent;
    appendToHandler[i] = handler - append;
    parts.produce[i] = append - sent;
    parts.waitFetch[i] = Math.max(0, start - append);
    parts.fetch[i] = end - Math.max(append, start);
    parts.queue[i] = handler - end;
  }
  const threshold = quantile(Float64Array.from(e2e).sort(), 0.99);
  const tail = [];
  for (let i = 0; i < n; i++) if (e2e[i] >= threshold) tail.push(i);

  const windowStart = n ? Math.min(...marks.sent.subarray(0, n)) : 0;
  const windowEnd = n ? Math.max(...marks.handler.subarray(0, n)) : 0;
  const inWindow = (e) => e.endAt >= windowStart && e.startAt <= windowEnd;
  const kinds = {
    commit: requests.filter((r) => r.api === 'OffsetCommit' && inWindow(r)),
    heartbeat: requests.filter((r) => r.api === 'Heartbeat' && inWindow(r)),
    gc: gcs.filter(inWindow),
    ...(brokerGcs && { brokerGc: brokerGcs.filter(inWindow) }),
  };
  const overlapping = {};
  for (const [kind, events] of Object.entries(kinds)) {
    const from = kind === 'brokerGc' ? marks.sent : marks.append;
    let messages = 0;
    let total = 0;
    for (const i of tail) {
      let o = 0;
      for (const e of events) o += overlap(from[i], marks.handler[i], e.startAt, e.endAt);
      if (o > 0) {
        messages++;
        total += o;
      }
    }
    overlapping[kind] = { messages, meanMs: messages ? total / messages : 0 };
  }
  const durations = (events) => summary(events.map((e) => e.endAt - e.startAt));
  return {
    messages: n,
    // The consumer's side alone: the broker's append to the handler (what the producer and generator do not touch).
    appendToHandler: summary(appendToHandler),
    segments: Object.fromEntries(SEGMENTS.map((s) => [s, summary(parts[s])])),
    tail: {
      thresholdMs: threshold,
      messages: tail.length,
      e2eMeanMs: tail.reduce((sum, i) => sum + e2e[i], 0) / (tail.length || 1),
      segmentsMeanMs: Object.fromEntries(
        SEGMENTS.map((s) => [s, tail.reduce((sum, i) => sum + parts[s][i], 0) / (tail.length || 1)]),
      ),
      overlapping,
    },
    events: {
      commits: { count: kinds.commit.length, ms: durations(kinds.commit) },
      heartbeats: { count: kinds.heartbeat.length, ms: durations(kinds.heartbeat) },
      fetches: { count: requests.filter((r) => r.api === 'Fetch' && inWindow(r)).length },
      gc: {
        count: kinds.gc.length,
        totalMs: kinds.gc.reduce((sum, e) => sum + e.endAt - e.startAt, 0),
        ms: durations(kinds.gc),
        byKind: Object.fromEntries(
          [...new Set(kinds.gc.map((e) => e.kind))].map((kind) => {
            const of = kinds.gc.filter((e) => e.kind === kind);
            return [kind, { count: of.length, ms: durations(of) }];
          }),
        ),
      },
      ...(kinds.brokerGc && {
        brokerGc: {
          count: kinds.brokerGc.length,
          totalMs: kinds.brokerGc.reduce((sum, e) => sum + e.endAt - e.startAt, 0),
          ms: durations(kinds.brokerGc),
        },
      }),
      loopDelayMs,
    },
  };
}
