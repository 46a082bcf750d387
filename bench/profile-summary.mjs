#!/usr/bin/env node
/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by package and the top functions, optionally
 * only over a window (the benchmark passes the first-to-last-message window, in the profile's own clock).
 *
 *   node bench/profile-summary.mjs <file.cpuprofile> [--top 30] [--from-us N --to-us N]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './lib/settings.mjs';

/** Which part of the stack a function belongs to, from its script URL. */
export function categoryOf(url, functionName) {
  if (!url) {
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (native, unattributed)';
    return 'native / builtins';
  }
  if (url.includes('/packages/nest-kafka-groups/')) return 'library (nest-kafka-groups)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/bench/')) return 'bench harness';
  return 'other';
}

function shortUrl(url) {
  if (!url) return '';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const rel = path.startsWith('/') ? relative(REPO_ROOT, path) : path;
  return rel.replace(/^node_modules\//, '');
}

/**
 * Self time per function and per category, and inclusive ("total") time per function, over the samples whose
 * timestamp lies in [fromUs, toUs] (the whole profile when not given). Times in milliseconds.
 */
export function summarizeProfile(profile, { top = 30, fromUs = -Infinity, toUs = Infinity } = {}) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const keyOf = (node) => {
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    return `${functionName || '(anonymous)'}|${url}|${lineNumber}|${columnNumber}`;
  };
  const self = new Map();
  const total = new Map();
  const categories = new Map();
  let windowMs = 0;
  let busyMs = 0;
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i];
    if (time < fromUs || time > toUs) continue;
    // The delta to the next sample is the time this sample stands for.
    const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i]) / 1000;
    const leaf = nodes.get(profile.samples[i]);
    const { functionName, url } = leaf.callFrame;
    const category = categoryOf(url, functionName);
    windowMs += ms;
    if (category === 'idle') continue;
    busyMs += ms;
    categories.set(category, (categories.get(category) ?? 0) + ms);
    const key = keyOf(leaf);
    self.set(key, (self.get(key) ?? 0) + ms);
    const seen = new Set();
    for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
      const k = keyOf(nodes.get(id));
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + ms);
    }
  }

  const describe = (key, ms) => {
    const [functionName, url, line] = key.split('|');
    return {
      function: functionName,
      location: url ? `${shortUrl(url)}:${Number(line) + 1}` : '',
      category: categoryOf(url, functionName),
      selfMs: round(ms),
      selfPct: round((100 * ms) / busyMs),
      totalMs: round(total.get(key) ?? ms),
      totalPct: round((100 * (total.get(key) ?? ms)) / busyMs),
    };
  };
  const bySelf = [...self.entries()].sort((x, y) => y[1] - x[1]);
  const topFunctions = bySelf.slice(0, top).map(([key, ms]) => describe(key, ms));
  const frameworkCategories = (c) =>
    c === 'library (nest-kafka-groups)' || c.startsWith('@nestjs/') || c === 'rxjs';
  const topFramework = bySelf
    .filter(([key]) => frameworkCategories(categoryOf(key.split('|')[1], key.split('|')[0])))
    .slice(0, top)
    .map(([key, ms]) => describe(key, ms));
  // Inclusive time of the framework's functions: where the per-message path spends its time, callees included.
  const topFrameworkInclusive = [...total.entries()]
    .filter(([key]) => frameworkCategories(categoryOf(key.split('|')[1], key.split('|')[0])))
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([key]) => describe(key, self.get(key) ?? 0));
  return {
    windowMs: round(windowMs),
    busyMs: round(busyMs),
    byCategory: Object.fromEntries(
      [...categories.entries()]
        .sort((x, y) => y[1] - x[1])
        .map(([category, ms]) => [category, { selfMs: round(ms), pct: round((100 * ms) / busyMs) }]),
    ),
    topFunctions,
    topFramework,
    topFrameworkInclusive,
  };
}

function round(value) {
  return Math.round(value * 10) / 10;
}

export function formatSummary(summary, { top = 20 } = {}) {
  const lines = [];
  lines.push(`window ${summary.windowMs} ms, busy (not idle) ${summary.busyMs} ms`);
  lines.push('self time by package:');
  for (const [category, { selfMs, pct }] of Object.entries(summary.byCategory)) {
    lines.push(`  ${pct.toFixed(1).padStart(5)}%  ${String(selfMs).padStart(8)} ms  ${category}`);
  }
  const table = (title, rows, field) => {
    lines.push(title);
    for (const row of rows.slice(0, top)) {
      const pct = field === 'self' ? row.selfPct : row.totalPct;
      lines.push(`  ${pct.toFixed(1).padStart(5)}%  ${row.function}  (${row.location})`);
    }
  };
  table('top self time, all code:', summary.topFunctions, 'self');
  table('top self time, library + Nest + rxjs:', summary.topFramework, 'self');
  table('top inclusive time, library + Nest + rxjs:', summary.topFrameworkInclusive, 'total');
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const file = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
  if (!file) {
    console.error(
      'usage: node bench/profile-summary.mjs <file.cpuprofile> [--top 30] [--from-us N --to-us N]',
    );
    process.exit(2);
  }
  const top = option('--top', 20);
  const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), {
    top,
    fromUs: option('--from-us', -Infinity),
    toUs: option('--to-us', Infinity),
  });
  console.log(formatSummary(summary, { top }));
}
