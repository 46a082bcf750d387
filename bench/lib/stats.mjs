/** Aggregation of the children's results: throughput statistics, ratios, soak verdict. */

export function median(values) {
  const sorted = [...values].sort((x, y) => x - y);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function round(value, digits = 0) {
  if (!Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** One system's throughput runs (each a child's result) as min / median / max and the medians of the rest. */
export function throughputSummary(runs) {
  const ok = runs.filter((r) => r.result && !r.error);
  const rates = ok.map((r) => r.result.msgsPerSec);
  return {
    msgsPerSec: round(median(rates)),
    throughput: {
      min: round(Math.min(...rates)),
      median: round(median(rates)),
      max: round(Math.max(...rates)),
      runs: rates.map((r) => round(r)),
    },
    firstToLastMs: {
      min: round(Math.min(...ok.map((r) => r.result.firstToLastMs))),
      median: round(median(ok.map((r) => r.result.firstToLastMs))),
      max: round(Math.max(...ok.map((r) => r.result.firstToLastMs))),
    },
    cpuUsPerMsg: round(median(ok.map((r) => r.result.cpuUsPerMsg)), 1),
    peakRssMB: {
      median: round(median(ok.map((r) => r.result.peakRss)) / 2 ** 20, 1),
      max: round(Math.max(...ok.map((r) => r.result.peakRss)) / 2 ** 20, 1),
    },
    startToFirstMessageMs: round(median(ok.map((r) => r.result.startToFirstMessageMs))),
    duplicates: ok.reduce((n, r) => n + r.result.duplicates, 0),
    committedToEnd: ok.every((r) => r.committedToEnd === true),
    failedRuns: runs.length - ok.length,
  };
}

/**
 * Each pair of RATIOS (subject over baseline): on the medians of the whole run, as the median of the per-round
 * ratios (each round's systems ran back to back, so per-round ratios cancel slow drifts of a shared machine), and by
 * CPU per message (the baseline's over the subject's: 1 = the subject costs as little CPU as the baseline). A pair
 * whose systems did not both run is left out.
 */
export function ratiosOf(systems, runsByRound, pairs) {
  const ratios = {};
  const perRound = {};
  const byCpu = {};
  for (const { name, subject, base } of pairs) {
    const s = systems[subject];
    const b = systems[base];
    if (!s || !b || !Number.isFinite(s.msgsPerSec) || !Number.isFinite(b.msgsPerSec)) continue;
    ratios[name] = round(s.msgsPerSec / b.msgsPerSec, 3);
    byCpu[name] = round(b.cpuUsPerMsg / s.cpuUsPerMsg, 3);
    const roundRatios = runsByRound
      .map((round) =>
        round[subject]?.result && round[base]?.result
          ? round[subject].result.msgsPerSec / round[base].result.msgsPerSec
          : NaN,
      )
      .filter(Number.isFinite);
    perRound[name] = round(median(roundRatios), 3);
  }
  return { ratios, ratiosMedianPerRound: perRound, ratiosByCpu: byCpu };
}

/** Least-squares slope of `value(s)` over `s.messages`, per message; NaN with fewer than 3 samples. */
function slopeOf(samples, value) {
  const n = samples.length;
  if (n < 3) return NaN;
  const mx = samples.reduce((x, s) => x + s.messages, 0) / n;
  const my = samples.reduce((y, s) => y + value(s), 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.messages - mx) * (value(s) - my);
    den += (s.messages - mx) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

/** Growth along the fitted line from the first to the last of `samples`, in bytes. */
function fittedGrowth(samples, value) {
  if (samples.length < 3) return NaN;
  return slopeOf(samples, value) * (samples[samples.length - 1].messages - samples[0].messages);
}

const MB = 2 ** 20;

/**
 * Memory along a soak. The first 20 % of the messages are warm-up (JIT, buffers, pools) and ignored. A leak is
 * memory the process keeps, so the verdict judges what a forced full GC leaves (the child's `afterGc` samples):
 * heap used, and external memory (Buffers and other memory outside the V8 heap). Either grows when its late median,
 * or its fitted line, is more than its allowance above its early median (afterGcVerdict). RSS (early: median over
 * 20-40 % of the messages, late: over the last 20 %) between collections follows V8's heap sizing and glibc's
 * arenas, which settle at their own pace: RSS only counts as growing when its late median is over its allowance
 * above its early median and it still rises in the last half of the run (fitted line over the last half above
 * half the allowance). Without after-GC samples (`--soak-no-gc`) RSS alone decides.
 */
export function soakVerdict(allSamples, total) {
  const samples = allSamples.filter((s) => !s.afterGc);
  const after = samples.filter((s) => s.messages >= total * 0.2);
  const early = after.filter((s) => s.messages < total * 0.4);
  const late = after.filter((s) => s.messages >= total * 0.8);
  const lastHalf = samples.filter((s) => s.messages >= total * 0.5);
  const rss = (s) => s.rss;
  const earlyRss = median(early.map(rss));
  const growth = median(late.map(rss)) - earlyRss;
  // RSS moves by tens of MB as V8 grows and shrinks its heap between collections; a leak keeps climbing past that.
  const allowed = Math.max(16 * MB, earlyRss * 0.1);
  const lastHalfGrowth = fittedGrowth(lastHalf, rss);
  const rssGrowing = growth > allowed && lastHalfGrowth > allowed / 2;
  const retained = afterGcVerdict(allSamples, total);
  const growing = [
    ...(retained.heap?.growing ? ['heap'] : []),
    ...(retained.external?.growing ? ['external'] : []),
    ...(rssGrowing ? ['rss'] : []),
  ];
  const mb = (b) => round(b / MB, 1);
  return {
    samples: samples.length,
    rssEarlyMB: mb(earlyRss),
    rssLateMB: mb(median(late.map(rss))),
    rssGrowthMB: mb(growth),
    rssSlopeMBPer100k: round((slopeOf(after, rss) * 100_000) / MB, 2),
    fittedGrowthMB: mb(fittedGrowth(after, rss)),
    rssLastHalfGrowthMB: mb(lastHalfGrowth),
    allowedGrowthMB: mb(allowed),
    heapUsedEarlyMB: mb(median(early.map((s) => s.heapUsed))),
    heapUsedLateMB: mb(median(late.map((s) => s.heapUsed))),
    rssMaxMB: mb(Math.max(...samples.map(rss))),
    afterGcSamples: retained.samples,
    ...(retained.heap && {
      heapAfterGcEarlyMB: mb(retained.heap.early),
      heapAfterGcLateMB: mb(retained.heap.late),
      heapAfterGcFittedGrowthMB: mb(retained.heap.fitted),
      heapAfterGcAllowedMB: mb(retained.heap.allowed),
      externalAfterGcEarlyMB: mb(retained.external.early),
      externalAfterGcLateMB: mb(retained.external.late),
      externalAfterGcFittedGrowthMB: mb(retained.external.fitted),
      externalAfterGcAllowedMB: mb(retained.external.allowed),
    }),
    judgedBy: retained.heap ? 'after-gc' : 'rss',
    growing,
    flat: growing.length === 0 && Number.isFinite(growth) && Number.isFinite(lastHalfGrowth),
  };
}

/**
 * Heap used and external memory after a forced full GC, over 20-90 % of the messages (early 20-40 %, late 70-90 %;
 * in the last 10 % the partitions run dry one after another and the data in flight shrinks with them), each
 * against its allowance: heap max(4 MB, 10 %) (what a collection leaves barely moves: a few hundred KB between
 * checkpoints), external max(16 MB, 10 %) (a fetch response of up to `maxBytes`, 10 MB, may be in flight at a
 * checkpoint). No figures without enough after-GC samples (at least 3, one early and one late).
 */
function afterGcVerdict(samples, total) {
  const settled = samples.filter((s) => s.afterGc && s.messages >= total * 0.2 && s.messages < total * 0.9);
  const early = settled.filter((s) => s.messages < total * 0.4);
  const late = settled.filter((s) => s.messages >= total * 0.7);
  if (settled.length < 3 || early.length === 0 || late.length === 0) return { samples: settled.length };
  const judge = (key, floorMB) => {
    const value = (s) => s[key];
    const e = median(early.map(value));
    const l = median(late.map(value));
    const fitted = fittedGrowth(settled, value);
    const allowed = Math.max(floorMB * MB, e * 0.1);
    return { early: e, late: l, fitted, allowed, growing: l - e > allowed || fitted > allowed };
  };
  return { samples: settled.length, heap: judge('heapUsed', 4), external: judge('external', 16) };
}
