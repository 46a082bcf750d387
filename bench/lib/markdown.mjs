/**
 * Writes the results of a run into docs/BENCHMARKS.md, between the two markers below; the rest of the page is
 * written by hand and left alone.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RATIOS, REPO_ROOT, SYSTEM_BY_ID, SYSTEMS } from './settings.mjs';

export const DOC = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const START = '<!-- bench:results:start (written by bench/run.mjs; edits inside are overwritten) -->';
const END = '<!-- bench:results:end -->';

const n = (value, digits = 0) =>
  value === null || value === undefined || Number.isNaN(value)
    ? '-'
    : Number(value).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/**
 * Where the latency went (bench/lib/latency-probe.mjs): the consumer's side alone (broker append → handler), the
 * mean segments of the messages at or above each system's p99, and what ran meanwhile.
 */
function breakdownTable(l) {
  const rows = SYSTEMS.map((system) => [system, l.systems[system.key]]).filter(([, s]) => s?.breakdown);
  if (rows.length === 0) return [];
  const lines = [
    'Where it went (`latency.systems.<key>.breakdown`, `producer`): append → handler is the consumer side alone ' +
      "(the broker's append time on each record, whole milliseconds); the tail columns are the mean of the messages " +
      'at or above the p99: produce (send → append), wait (on the broker before the consumer fetched), fetch ' +
      '(fetch under way → response decoded), queue (→ handler); commits and GC pauses in the consumer over the run; ' +
      "the broker's pauses (every safepoint, whatever the collector, from the moment the broker began to stop its " +
      'threads; a broker the run started logs them) and the tail messages sent before one ended and handled after ' +
      "it began; the generator's send gaps and Produce round trips.",
    '',
    '| System | append → handler p50 / p99 | tail: produce / wait / fetch / queue | tail overlapping a commit / GC | commits (p50) | GC pauses (total, max) | broker pauses (max), tail overlapping | send gap p99, Produce p99 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [system, s] of rows) {
    const b = s.breakdown;
    const t = b.tail.segmentsMeanMs;
    const e = b.events;
    lines.push(
      `| ${system.id} | ${n(b.appendToHandler.p50, 2)} / ${n(b.appendToHandler.p99, 2)} ms | ` +
        `${n(t.produce, 1)} / ${n(t.waitFetch, 1)} / ${n(t.fetch, 1)} / ${n(t.queue, 1)} ms | ` +
        `${n(b.tail.overlapping.commit.messages)} / ${n(b.tail.overlapping.gc.messages)} of ${n(b.tail.messages)} | ` +
        `${n(e.commits.count)} (${n(e.commits.ms.p50, 1)} ms) | ${n(e.gc.count)} (${n(e.gc.totalMs, 0)} ms, ${n(e.gc.ms.max, 1)} ms) | ` +
        `${e.brokerGc ? `${n(e.brokerGc.count)} (${n(e.brokerGc.ms.max, 1)} ms), ${n(b.tail.overlapping.brokerGc.messages)} of ${n(b.tail.messages)}` : '-'} | ` +
        `${s.producer ? `${n(s.producer.gapMs.p99, 1)} ms, ${n(s.producer.produceRequestMs.p99, 1)} ms` : ''} |`,
    );
  }
  lines.push('');
  return lines;
}

/**
 * Where the run's wall-clock time went (`phases`, `throughputTimingBySystem`, each run's `timing`): the phases in
 * the order they began, then per system the throughput phase's steps summed over its rounds.
 */
function timeTable(results) {
  if (!results.phases?.length) return [];
  const lines = [
    `#### Where the run's ${n(results.durationSeconds)} s went`,
    '',
    'A data set is produced inside the phase that first needs it; the latency, soak and throughput lines include it.',
    '',
    '| Phase | began at | seconds |',
    '|---|---:|---:|',
  ];
  for (const p of results.phases)
    lines.push(`| ${p.name} | ${n(p.startSeconds, 1)} s | ${n(p.seconds, 1)} |`);
  lines.push('');
  const bySystem = results.throughputTimingBySystem ?? {};
  const rows = SYSTEMS.filter((system) => bySystem[system.id]);
  if (rows.length > 0) {
    lines.push(
      'Throughput phase per system, summed over its rounds (seconds): fork to ready (process start, imports, ' +
        "bootstrap), ready to result (joining, then the measured first to last message), result to exit (the system's " +
        "stop), checks (the group's commits, deleting it).",
    );
    lines.push('');
    lines.push(
      '| System | runs | fork → ready | ready → result | of which measured | result → exit | checks | wall |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const system of rows) {
      const t = bySystem[system.id];
      lines.push(
        `| ${system.id} | ${t.runs} | ${n(t.toReady, 1)} | ${n(t.joinAndMeasured, 1)} | ${n(t.measured, 1)} | ` +
          `${n(t.toExit, 1)} | ${n(t.checks, 1)} | ${n(t.wall, 1)} |`,
      );
    }
    lines.push('');
  }
  return lines;
}

export function resultsMarkdown(results) {
  const lines = [];
  const { machine, versions, settings, broker } = results;
  lines.push(
    `### Run of ${results.generatedAt.slice(0, 16).replace('T', ' ')} UTC (${results.mode} mode, ${n(results.durationSeconds)} s)`,
  );
  lines.push('');
  lines.push(
    `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, ${machine.os}; load average ` +
      `${machine.loadAverageAtStart.join(' / ')} at start, ${machine.loadAverageAtEnd?.join(' / ') ?? '-'} at end`,
  );
  lines.push(
    `- Versions: Node ${versions.node}, kafkajs ${versions.kafkajs}, @nestjs/core ${versions['@nestjs/core']}, ` +
      `@nestjs/microservices ${versions['@nestjs/microservices']}, rxjs ${versions.rxjs}; library ${versions.library} ` +
      `at ${versions.commit ?? '?'}${versions.srcModified ? ' (src/ modified)' : ''}`,
  );
  lines.push(
    `- Broker: ${broker.kafka ? `Apache Kafka ${broker.kafka} (KRaft, single node, local launcher)` : 'reused'} at ${broker.brokers}`,
  );
  lines.push(
    `- Data: ${n(settings.messages)} JSON flight positions of ~${settings.valueBytesAverage} B, keyed by aircraft, ` +
      (settings.validatedMessages && settings.validatedMessages !== settings.messages
        ? `and ${n(settings.validatedMessages)} of the same kind for the validated systems (c+v, d+v, d+vp), `
        : '') +
      `${settings.partitions} partitions; ${settings.rounds} interleaved round(s); fresh group per run from the earliest offset`,
  );
  const c = settings.consumer;
  lines.push(
    `- Consumers (the Node systems; c via its \`consumer\`/\`run\` options, j under Java's names with one thread): partitionsConsumedConcurrently ` +
      `${settings.partitionsConsumedConcurrently}, maxWaitTimeInMs ${c.maxWaitTimeInMs}, minBytes ${c.minBytes}, ` +
      `maxBytes ${n(c.maxBytes)}, maxBytesPerPartition ${n(c.maxBytesPerPartition)}, sessionTimeout ${n(c.sessionTimeout)}, ` +
      `heartbeatInterval ${n(c.heartbeatInterval)}`,
  );
  const load = Math.max(machine.loadAverageAtStart[0], machine.loadAverageAtEnd?.[0] ?? 0);
  if (load > machine.cores * 0.5) {
    lines.push(
      `- **Indicative only:** the load average reached ${load} on ${machine.cores} cores during this run, so other ` +
        'work shared the CPU; wall-clock figures move with it (CPU µs per message much less).',
    );
  }
  lines.push('');

  if (results.systems) {
    lines.push('#### Throughput (messages per second, higher is better)');
    lines.push('');
    lines.push(
      '| System | median msg/s | min | max | first→last (median) | CPU µs/msg | peak RSS | start→first msg | committed |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|:---:|');
    for (const system of SYSTEMS) {
      const s = results.systems[system.key];
      if (!s) continue;
      lines.push(
        `| ${system.id}. ${system.label} | **${n(s.throughput.median)}** | ${n(s.throughput.min)} | ${n(s.throughput.max)} | ` +
          `${n(s.firstToLastMs.median / 1000, 2)} s | ${n(s.cpuUsPerMsg, 1)} | ${n(s.peakRssMB.max, 0)} MB | ` +
          `${n(s.startToFirstMessageMs / 1000, 2)} s | ${s.committedToEnd ? 'yes' : '**no**'} |`,
      );
    }
    lines.push('');
    const r = results.ratios ?? {};
    const pr = results.ratiosMedianPerRound ?? {};
    const cpu = results.ratiosByCpu ?? {};
    lines.push('| Ratio | medians | median of per-round ratios | by CPU µs/msg | target |');
    lines.push('|---|---:|---:|---:|---:|');
    for (const { name, subject, base, target } of RATIOS) {
      if (r[name] === undefined) continue;
      lines.push(
        `| ${subject} / ${base} (${SYSTEM_BY_ID.get(base).label}), \`${name}\` | ${n(r[name], 3)} | ${n(pr[name], 3)} | ` +
          `${n(cpu[name], 3)} | ${target === undefined ? 'reference' : `≥ ${target}`} |`,
      );
    }
    lines.push('');
  }

  if (results.latency) {
    const l = results.latency;
    lines.push(
      `#### End-to-end latency at ${n(l.rate)} msg/s for ${l.seconds} s (after ${l.warmupSeconds} s warm-up), produce → handler`,
    );
    lines.push('');
    lines.push(
      l.brokerNice == null
        ? `The broker ran at the priority it was started with (${l.brokerNiceNote ?? 'not recorded'}).`
        : `The broker's threads ran at nice ${l.brokerNice} during this phase, for every system alike (it stands for a host of its own; \`BENCH_BROKER_NICE\`).`,
    );
    if (l.brokerCollected !== undefined)
      lines.push(
        l.brokerCollected
          ? "The broker's heap was collected (`jcmd GC.run`) before each system's window, for every system alike, so each started from an empty young generation (`BENCH_BROKER_COLLECT=0` leaves it alone); any broker pause in a window still shows in the breakdown."
          : "The broker's heap was not collected between the systems' windows.",
      );
    lines.push('');
    lines.push(
      '| System | p50 | p90 | p99 | p99.9 | max | samples | CPU µs/msg | allocated KB/msg | scavenges/s | fetches/s | commits/s |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const system of SYSTEMS) {
      const s = l.systems[system.key];
      if (!s) continue;
      if (s.error) {
        lines.push(`| ${system.id}. ${system.label} | failed | | | | | | | | | | |`);
        continue;
      }
      lines.push(
        `| ${system.id}. ${system.label} | ${n(s.p50Ms, 2)} ms | ${n(s.p90Ms, 2)} ms | ${n(s.p99Ms, 2)} ms | ` +
          `${n(s.p999Ms, 2)} ms | ${n(s.maxMs, 1)} ms | ${n(s.samples)} | ${n(s.cpuUsPerMsg, 1)} | ` +
          `${n(s.load?.allocatedBytesPerMsg / 1024, 1)} | ${n(s.load?.scavengesPerSec, 1)} | ${n(s.load?.fetchesPerSec, 0)} | ` +
          `${n(s.load?.commitsPerSec, 2)} |`,
      );
    }
    lines.push('');
    lines.push(...breakdownTable(l));
  }

  if (results.soak) {
    const s = results.soak;
    lines.push(`#### Soak: ${n(s.messages)} messages through d`);
    lines.push('');
    if (s.error) {
      lines.push(`Failed: ${s.error}`);
    } else {
      const afterGc = (early, late, allowed) =>
        s.judgedBy === 'after-gc' ? `${n(early, 1)} → ${n(late, 1)} MB (${n(allowed, 0)} MB)` : 'not sampled';
      lines.push(
        '| msg/s | heap after GC 20-40% → last 20% (allowed) | external after GC (allowed) | RSS 20-40% → last 20% (allowed) | RSS rise in last half | peak RSS | verdict |',
      );
      lines.push('|---:|---:|---:|---:|---:|---:|:---:|');
      lines.push(
        `| ${n(s.msgsPerSec)} | ${afterGc(s.heapAfterGcEarlyMB, s.heapAfterGcLateMB, s.heapAfterGcAllowedMB)} | ` +
          `${afterGc(s.externalAfterGcEarlyMB, s.externalAfterGcLateMB, s.externalAfterGcAllowedMB)} | ` +
          `${n(s.rssEarlyMB, 1)} → ${n(s.rssLateMB, 1)} MB (${n(s.allowedGrowthMB, 0)} MB) | ` +
          `${n(s.rssLastHalfGrowthMB, 1)} MB | ${n(s.peakRssMB, 0)} MB | ` +
          `${s.flat ? 'flat' : `**growing**${s.growing?.length ? ` (${s.growing.join(', ')})` : ''}`} |`,
      );
    }
    lines.push('');
  }

  if (results.profile && Object.keys(results.profile).length > 0) {
    for (const [id, p] of Object.entries(results.profile)) {
      lines.push(
        `#### CPU profile of ${id} (first to last message, ${n(p.msgsPerSecProfiled)} msg/s under the profiler)`,
      );
      lines.push('');
      lines.push('| Self time by package | share |');
      lines.push('|---|---:|');
      for (const [category, c] of Object.entries(p.byCategory).slice(0, 10))
        lines.push(`| ${category} | ${n(c.pct, 1)} % |`);
      lines.push('');
      lines.push('| Top self time in the library, Nest and rxjs | self | inclusive |');
      lines.push('|---|---:|---:|');
      for (const f of p.topFramework.slice(0, 10)) {
        lines.push(`| \`${f.function}\` (${f.location}) | ${n(f.selfPct, 1)} % | ${n(f.totalPct, 1)} % |`);
      }
      lines.push('');
    }
  }

  lines.push(...timeTable(results));

  if (results.targets && Object.keys(results.targets).length > 0) {
    const parts = [];
    for (const [name, t] of Object.entries(results.targets)) {
      const verdict = t.met ? 'met' : '**not met**';
      if (name === 'latency')
        parts.push(
          `${t.system} latency p50 ≤ ${t.targetP50Ms} ms and p99 ≤ ${t.targetP99Ms} ms at ${n(t.rate)} msg/s ${verdict} ` +
            `(${n(t.p50Ms, 2)} / ${n(t.p99Ms, 2)} ms)`,
        );
      else if (name === 'soakFlat')
        parts.push(
          t.judgedBy === 'after-gc'
            ? `soak memory flat ${verdict} (heap and external after a forced GC within their allowances, RSS not still rising)`
            : `soak memory flat ${verdict} (RSS only: run without forced GCs)`,
        );
      else
        parts.push(
          `${t.subject}/${t.base} ≥ ${t.target} ${verdict} (wall clock ${n(t.value, 3)}, CPU per message ${n(t.cpu, 3)}: both must reach it)`,
        );
    }
    lines.push(`Targets: ${parts.join('; ')}.`);
    lines.push('');
  }
  lines.push('Raw figures, every run and the soak series: `bench/results/latest.json`.');
  return lines.join('\n');
}

/**
 * The block goes through prettier (the repository's style, `npm run format`), so a bench run leaves the page as
 * `npm run format:check` wants it.
 */
export async function writeBenchmarksDoc(results) {
  const prettier = await import('prettier');
  const options = { ...(await prettier.resolveConfig(DOC)), parser: 'markdown' };
  const block = `${START}\n\n${await prettier.format(resultsMarkdown(results), options)}${END}`;
  const current = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n\n## Results\n\n';
  const startAt = current.indexOf(START);
  const endAt = current.indexOf(END);
  const next =
    startAt >= 0 && endAt > startAt
      ? `${current.slice(0, startAt)}${block}${current.slice(endAt + END.length)}`
      : `${current.trimEnd()}\n\n${block}\n`;
  mkdirSync(dirname(DOC), { recursive: true });
  writeFileSync(DOC, next);
  return DOC;
}
