/**
 * The measuring side of a system child (bench/systems/*.mjs), forked by bench/run.mjs with its job as argv[2].
 *
 * A system calls `runChild(start)`: `start(job, tracker)` starts consuming and resolves to a stop function; the
 * system's handler calls `tracker.record(partition, offset, flight)` once per message with the parsed value. The
 * tracker decides when the run is complete, measures it and reports to the parent over IPC; then the system is
 * stopped and the process exits. One child per run, so the peak RSS reported is that system's alone.
 *
 * Jobs: `throughput` (consume a pre-produced topic to its end), `latency` (consume while the latency generator
 * produces at a fixed rate; latency = handler time - produce time in the message) and `soak` (throughput plus
 * `process.memoryUsage()` samples, some of them after a forced GC).
 */
import { performance } from 'node:perf_hooks';
import { GCProfiler } from 'node:v8';
import { breakdown, LatencyProbe, MessageMarks, readBrokerGcPauses } from './latency-probe.mjs';

const STOP_TIMEOUT_MS = 30_000;

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function wallClockMs() {
  return performance.timeOrigin + performance.now();
}

export class Tracker {
  count = 0;
  checksum = 0;
  firstAt = 0;
  lastAt = 0;

  constructor(job, onComplete) {
    this.job = job;
    this.onComplete = onComplete;
    this.complete = false;
    // Throughput and soak end when every partition delivered its last offset (duplicates cannot end a run early).
    this.lastOffsets = job.lastOffsets ?? {};
    this.partitionsLeft = Object.keys(this.lastOffsets).length;
    this.partitionDone = new Set();
    // What was seen, to check against the data set: per partition one counter per offset, and one per message seq.
    this.firstOffsets = Object.fromEntries(
      Object.entries(job.firstOffsets ?? {}).map(([partition, first]) => [partition, Number(first)]),
    );
    this.seenOffsets = Object.fromEntries(
      Object.entries(this.lastOffsets).map(([partition, last]) => [
        partition,
        new Uint8Array(Number(last) - (this.firstOffsets[partition] ?? 0) + 1),
      ]),
    );
    this.seenSeqs = job.lastOffsets ? new Uint8Array(job.total) : undefined;
    this.unexpected = 0;
    this.latencies = job.kind === 'latency' ? new Float64Array(job.total) : undefined;
    this.latencyCount = 0;
    /** Latency jobs: where each message's latency went (set by runChild with the probe of the consumer's events). */
    this.probe = undefined;
    this.marks = this.latencies !== undefined ? new MessageMarks(job.total) : undefined;
    this.cpuAtFirst = undefined;
    this.samples = [];
    // Soak: memory sampled by messages, not by time, so a run of any speed gets the same number of samples.
    this.sampleEvery = job.kind === 'soak' ? job.sampleEveryMessages : 0;
    this.nextSampleAt = this.sampleEvery > 0 ? this.sampleEvery : Infinity;
    this.gcEvery = typeof globalThis.gc === 'function' ? (job.gcEveryMessages ?? 0) : 0;
    this.nextGcAt = this.gcEvery;
  }

  /**
   * The handler's work: the value is already parsed; touch a field so nothing is optimised away. `timestamp` is the
   * record's (the broker's append time in the latency phase's topics).
   */
  record(partition, offset, flight, timestamp) {
    const now = performance.now();
    if (this.count++ === 0) this.onFirst(now);
    if (this.count >= this.nextSampleAt) this.checkpoint(now);
    this.checksum += flight.alt;
    if (this.latencies !== undefined) {
      if (flight.warm !== true && this.latencyCount < this.latencies.length) {
        const at = performance.timeOrigin + now;
        const i = this.latencyCount++;
        this.latencies[i] = at - flight.sentAt;
        const { marks, probe } = this;
        if (probe !== undefined) {
          marks.sent[i] = flight.sentAt;
          marks.append[i] = Number(timestamp);
          marks.fetchStart[i] = probe.fetchStartAt;
          marks.fetchEnd[i] = probe.fetchEndAt;
          marks.handler[i] = at;
          marks.count = i + 1;
        }
      }
      if (this.count >= this.job.total) this.finish(now);
      return;
    }
    const seen = this.seenOffsets[partition];
    const index = Number(offset) - (this.firstOffsets[partition] ?? 0);
    if (seen !== undefined && index >= 0 && index < seen.length) {
      if (seen[index] < 255) seen[index]++;
    } else {
      this.unexpected++;
    }
    if (flight.seq >= 0 && flight.seq < this.seenSeqs.length) {
      if (this.seenSeqs[flight.seq] < 255) this.seenSeqs[flight.seq]++;
    } else {
      this.unexpected++;
    }
    if (offset === this.lastOffsets[partition] && !this.partitionDone.has(partition)) {
      this.partitionDone.add(partition);
      if (--this.partitionsLeft === 0) this.finish(now);
    }
  }

  onFirst(now) {
    this.firstAt = now;
    this.hrFirstUs = Number(process.hrtime.bigint() / 1000n);
    this.cpuAtFirst = process.cpuUsage();
    if (this.latencies !== undefined) {
      this.gcProfiler = new GCProfiler();
      this.gcProfiler.start();
      this.heapUsedAtFirst = process.memoryUsage().heapUsed;
    }
    if (this.sampleEvery > 0) this.sample(now);
  }

  /**
   * A soak's checkpoint, every `sampleEveryMessages`: one sample as the process runs and, each time another
   * `gcEveryMessages` went through, one after a forced full GC (the child runs with --expose-gc): what is left then
   * is what the process retains, without the garbage a sample happens to catch between two collections.
   */
  checkpoint(now) {
    this.nextSampleAt += this.sampleEvery;
    this.sample(now);
    if (this.gcEvery > 0 && this.count >= this.nextGcAt) {
      this.nextGcAt += this.gcEvery;
      this.sampleAfterGc();
    }
  }

  /** Two collections: V8's count of external memory only drops at the collection after its buffers were freed. */
  sampleAfterGc() {
    globalThis.gc();
    globalThis.gc();
    this.sample(performance.now(), true);
  }

  sample(now, afterGc = false) {
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
    this.samples.push({
      t: Math.round(now - this.firstAt),
      messages: this.count,
      afterGc,
      rss,
      heapTotal,
      heapUsed,
      external,
      arrayBuffers,
    });
  }

  finish(now) {
    if (this.complete) return;
    this.complete = true;
    this.lastAt = now;
    this.hrLastUs = Number(process.hrtime.bigint() / 1000n);
    if (this.gcProfiler !== undefined) {
      this.gcs = this.gcProfiler.stop().statistics;
      this.heapUsedAtLast = process.memoryUsage().heapUsed;
    }
    if (this.sampleEvery > 0) {
      this.sample(now);
      if (this.gcEvery > 0) this.sampleAfterGc();
    }
    this.onComplete();
  }

  result() {
    const cpu = process.cpuUsage(this.cpuAtFirst);
    const seconds = (this.lastAt - this.firstAt) / 1000;
    const result = {
      messages: this.count,
      expected: this.job.total,
      duplicates: undefined,
      firstToLastMs: this.lastAt - this.firstAt,
      msgsPerSec: seconds > 0 ? this.count / seconds : 0,
      // Process start (timeOrigin) to the first message: module loading, bootstrap, joining the group.
      startToFirstMessageMs: this.firstAt,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      cpuUsPerMsg: (cpu.user + cpu.system) / this.count,
      peakRss: process.resourceUsage().maxRSS * 1024,
      rssAtEnd: process.memoryUsage().rss,
      checksum: this.checksum,
      // The monotonic clock of `node --cpu-prof` profiles: lets the profile summary keep only this window.
      hrFirstUs: this.hrFirstUs,
      hrLastUs: this.hrLastUs,
    };
    if (this.seenSeqs !== undefined) {
      result.verification = this.verify();
      result.duplicates = result.verification.duplicateOffsets;
    }
    if (this.latencies !== undefined)
      result.latencies = summarizeLatencies(this.latencies.subarray(0, this.latencyCount));
    if (this.gcs !== undefined) result.load = this.load(seconds, cpu);
    if (this.probe !== undefined) {
      this.probe.stop();
      result.breakdown = breakdown(this.marks, {
        ...this.probe.marks(),
        brokerGcs: readBrokerGcPauses(this.job.brokerGcLog),
      });
    }
    if (this.job.kind === 'soak') result.samples = this.samples;
    return result;
  }

  /**
   * A latency run's cost per message and per second between the first and the last message (warm-up included, as
   * the CPU): steadier under a shared machine's load than the percentiles. Bytes allocated are what each GC found
   * in use beyond what the one before it left (V8's collections start from a full young generation, so this counts
   * every allocation), plus what the run added after the last GC.
   */
  load(seconds, cpu) {
    let allocated = 0;
    let usedAfter = this.heapUsedAtFirst;
    let scavenges = 0;
    for (const gc of this.gcs) {
      allocated += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - usedAfter);
      usedAfter = gc.afterGC.heapStatistics.usedHeapSize;
      if (gc.gcType === 'Scavenge') scavenges++;
    }
    allocated += Math.max(0, this.heapUsedAtLast - usedAfter);
    const inWindow = (api) =>
      this.probe?.requests.filter(
        (r) =>
          r.api === api &&
          r.endAt >= performance.timeOrigin + this.firstAt &&
          r.endAt <= performance.timeOrigin + this.lastAt,
      ).length;
    const perSecond = (count) => (count === undefined || seconds <= 0 ? undefined : count / seconds);
    return {
      cpuUsPerMsg: (cpu.user + cpu.system) / this.count,
      allocatedBytesPerMsg: allocated / this.count,
      allocatedMBPerSec: perSecond(allocated / 2 ** 20),
      gcs: this.gcs.length,
      scavengesPerSec: perSecond(scavenges),
      fetchesPerSec: perSecond(inWindow('Fetch')),
      commitsPerSec: perSecond(inWindow('OffsetCommit')),
      heartbeatsPerSec: perSecond(inWindow('Heartbeat')),
    };
  }

  /**
   * The run against its data set: every offset of every partition and every message seq seen exactly once, nothing
   * outside them, and the checksum of the values equal to the data set's. Losses and duplicates are counted apart,
   * so they cannot cancel out.
   */
  verify() {
    const missingOffsets = {};
    let missing = 0;
    let duplicateOffsets = 0;
    for (const [partition, seen] of Object.entries(this.seenOffsets)) {
      let missingHere = 0;
      for (const times of seen) {
        if (times === 0) missingHere++;
        else duplicateOffsets += times - 1;
      }
      if (missingHere > 0) missingOffsets[partition] = missingHere;
      missing += missingHere;
    }
    let missingSeqs = 0;
    let duplicateSeqs = 0;
    for (const times of this.seenSeqs) {
      if (times === 0) missingSeqs++;
      else duplicateSeqs += times - 1;
    }
    const checksumMatches =
      this.job.expectedChecksum === undefined ||
      duplicateSeqs > 0 ||
      this.checksum === this.job.expectedChecksum;
    const problems = [];
    if (missing > 0) problems.push(`${missing} offset(s) never seen ${JSON.stringify(missingOffsets)}`);
    if (duplicateOffsets > 0) problems.push(`${duplicateOffsets} offset(s) seen more than once`);
    if (missingSeqs > 0) problems.push(`${missingSeqs} message seq(s) never seen`);
    if (duplicateSeqs > 0) problems.push(`${duplicateSeqs} message seq(s) seen more than once`);
    if (this.unexpected > 0) problems.push(`${this.unexpected} message(s) outside the data set`);
    if (!checksumMatches) problems.push(`checksum ${this.checksum}, data set ${this.job.expectedChecksum}`);
    return {
      ok: problems.length === 0,
      problems,
      missingOffsets: missing,
      duplicateOffsets,
      missingSeqs,
      duplicateSeqs,
    };
  }
}

export function summarizeLatencies(values) {
  const sorted = Float64Array.from(values).sort();
  const at = (q) =>
    sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  };
}

/**
 * The self-check of a run recorded outside this process (system j's JVM records what Tracker.record does and sends
 * its marks: `seenOffsets` per partition and `seenSeqs` as base64 bytes, `unexpected`, `checksum`): the same
 * Tracker.verify, so a Java run is held to exactly the same check.
 */
export function verifyRecording(job, recording) {
  const tracker = new Tracker(job, () => undefined);
  for (const partition of Object.keys(tracker.seenOffsets)) {
    const seen = Buffer.from(recording.seenOffsets?.[partition] ?? '', 'base64');
    if (seen.length !== tracker.seenOffsets[partition].length)
      throw new Error(
        `partition ${partition}: ${seen.length} offset marks recorded, ${tracker.seenOffsets[partition].length} expected`,
      );
    tracker.seenOffsets[partition] = new Uint8Array(seen);
  }
  const seqs = Buffer.from(recording.seenSeqs ?? '', 'base64');
  if (seqs.length !== tracker.seenSeqs.length)
    throw new Error(`${seqs.length} seq marks recorded, ${tracker.seenSeqs.length} expected`);
  tracker.seenSeqs = new Uint8Array(seqs);
  tracker.unexpected = recording.unexpected;
  tracker.checksum = recording.checksum;
  return tracker.verify();
}

export function send(message) {
  return new Promise((resolve) => {
    if (!process.send) {
      console.log(JSON.stringify(message));
      resolve();
    } else {
      process.send(message, () => resolve());
    }
  });
}

/** The kafkajs `Kafka` classes a system's consumers come from: a latency job watches them (latency-probe.mjs). */
const watchedKafkajs = [];

export function watchKafkajs(Kafka) {
  watchedKafkajs.push(Kafka);
}

/**
 * Runs one job: `start(job, tracker)` resolves to an async stop function once the system is consuming (or at
 * least joining). Exits the process when done, or with code 1 after the job's timeout.
 */
export async function runChild(start) {
  const job = JSON.parse(process.argv[2]);
  let resolveComplete;
  const complete = new Promise((resolve) => (resolveComplete = resolve));
  const tracker = new Tracker(job, () => resolveComplete());
  if (job.kind === 'latency' && watchedKafkajs.length > 0) {
    tracker.probe = new LatencyProbe();
    for (const Kafka of watchedKafkajs) tracker.probe.watchClient(Kafka);
  }
  const deadline = setTimeout(async () => {
    await send({
      type: 'error',
      error: `timed out after ${job.timeoutMs} ms with ${tracker.count} of ${job.total} messages`,
    });
    process.exit(1);
  }, job.timeoutMs);

  try {
    const stop = await start(job, tracker);
    await send({ type: 'ready', atMs: performance.now() });
    await complete;
    clearTimeout(deadline);
    await send({ type: 'result', result: tracker.result() });
    const stopStarted = performance.now();
    const stopped = await Promise.race([
      stop().then(
        () => 'ok',
        (error) => `stop failed: ${error?.message ?? error}`,
      ),
      new Promise((resolve) => setTimeout(() => resolve('stop timed out'), STOP_TIMEOUT_MS).unref()),
    ]);
    await send({ type: 'stopped', outcome: stopped, stopMs: performance.now() - stopStarted });
    process.exit(0);
  } catch (error) {
    await send({ type: 'error', error: error?.stack ?? String(error) });
    process.exit(1);
  }
}
