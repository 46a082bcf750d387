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

/**
 * RSS along a soak: ignores the first 20% of messages (warm-up: JIT, buffers, pools), then compares the median RSS
 * of the next 20% with the median of the last 20%, and fits a line over everything after warm-up. Flat when both
 * the growth between the medians and the growth along the fitted line stay within the allowance.
 */
export function soakVerdict(allSamples, total) {
  const samples = allSamples.filter((s) => !s.afterGc);
  const after = samples.filter((s) => s.messages >= total * 0.2);
  const early = after.filter((s) => s.messages < total * 0.4);
  const late = after.filter((s) => s.messages >= total * 0.8);
  const mb = (b) => b / 2 ** 20;
  const earlyRss = median(early.map((s) => s.rss));
  const lateRss = median(late.map((s) => s.rss));
  const earlyHeap = median(early.map((s) => s.heapUsed));
  const lateHeap = median(late.map((s) => s.heapUsed));
  // Least squares slope of RSS over messages, in MB per 100k messages.
  const n = after.length;
  let slope = NaN;
  if (n >= 3) {
    const mx = after.reduce((x, s) => x + s.messages, 0) / n;
    const my = after.reduce((y, s) => y + s.rss, 0) / n;
    let num = 0;
    let den = 0;
    for (const s of after) {
      num += (s.messages - mx) * (s.rss - my);
      den += (s.messages - mx) ** 2;
    }
    slope = den > 0 ? (num / den) * 100_000 : NaN;
  }
  const growthMB = mb(lateRss - earlyRss);
  // Noise: RSS moves by a few MB as V8 grows and shrinks its heap; a leak keeps climbing well past that.
  const allowedMB = Math.max(16, mb(earlyRss) * 0.1);
  // The fitted line over the measured span (after warm-up) must stay within the same allowance: a steady climb
  // fails even when the two medians happen to land close together.
  const span = n > 0 ? after[n - 1].messages - after[0].messages : 0;
  const fittedGrowthMB = mb(slope) * (span / 100_000);
  return {
    samples: samples.length,
    rssEarlyMB: round(mb(earlyRss), 1),
    rssLateMB: round(mb(lateRss), 1),
    rssGrowthMB: round(growthMB, 1),
    rssSlopeMBPer100k: round(mb(slope), 2),
    heapUsedEarlyMB: round(mb(earlyHeap), 1),
    heapUsedLateMB: round(mb(lateHeap), 1),
    rssMaxMB: round(mb(Math.max(...samples.map((s) => s.rss))), 1),
    ...afterGcFigures(allSamples, total),
    allowedGrowthMB: round(allowedMB, 1),
    fittedGrowthMB: round(fittedGrowthMB, 1),
    flat:
      Number.isFinite(growthMB) &&
      growthMB <= allowedMB &&
      Number.isFinite(fittedGrowthMB) &&
      fittedGrowthMB <= allowedMB,
  };
}

/**
 * The samples taken after a forced full GC (the soak child's `afterGc`): median heap used and external memory over
 * 20-40 % of the messages and over the last 20 %, what the process retains rather than what it happened to hold.
 */
function afterGcFigures(samples, total) {
  const settled = samples.filter((s) => s.afterGc && s.messages >= total * 0.2);
  const early = settled.filter((s) => s.messages < total * 0.4);
  const late = settled.filter((s) => s.messages >= total * 0.8);
  const mbOf = (list, key) => round(median(list.map((s) => s[key])) / 2 ** 20, 1);
  return {
    afterGcSamples: settled.length,
    heapAfterGcEarlyMB: mbOf(early, 'heapUsed'),
    heapAfterGcLateMB: mbOf(late, 'heapUsed'),
    externalAfterGcEarlyMB: mbOf(early, 'external'),
    externalAfterGcLateMB: mbOf(late, 'external'),
  };
}
