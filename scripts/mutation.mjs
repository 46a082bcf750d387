#!/usr/bin/env node
/**
 * `npm run test:mutation`: StrykerJS over the files of stryker.config.mjs, one Stryker run per file, each writing
 * its own JSON report under reports/mutation/files/ (so what finished survives a run that is cut off), then merged
 * into reports/mutation/mutation.json with the score printed. Fails below the config's break threshold.
 *
 *   node scripts/mutation.mjs                          every file, one run each, then merge
 *   node scripts/mutation.mjs <file>[:<lines>] ...     these files (or line ranges, e.g. src/x.ts:1-200), then merge
 *   node scripts/mutation.mjs --merge                  merge the per-file reports already there
 *   ... --survivors                                    also list the surviving mutants (file:line, the change)
 *   ... --related                                      judge each file by every spec that imports it (slower)
 *   node scripts/mutation.mjs --list                   the files a full run mutates
 *   node scripts/mutation.mjs --full                   one Stryker run over everything (writes mutation.json itself)
 *
 * Other `--` options (e.g. --concurrency 1) go to Stryker. The merge keeps, per file, the newest report of each
 * distinct line range: re-running a file replaces its earlier result.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG = path.join(ROOT, 'stryker.config.mjs');
const REPORTS = path.join(ROOT, 'reports/mutation');
const PER_FILE = path.join(REPORTS, 'files');
const MERGED = path.join(REPORTS, 'mutation.json');
const STRYKER = path.join(ROOT, 'node_modules/@stryker-mutator/core/bin/stryker.js');

const { default: config } = await import(pathToFileURL(CONFIG).href);
const args = process.argv.slice(2);
const strykerArgs = [];
const targets = [];
let mode = 'files';
let related = false;
let survivors = false;
for (let index = 0; index < args.length; index++) {
  const arg = args[index];
  if (arg === '--merge') mode = 'merge';
  else if (arg === '--list') mode = 'list';
  else if (arg === '--related') related = true;
  else if (arg === '--survivors') survivors = true;
  else if (arg === '--full') mode = 'full';
  else if (arg.startsWith('--')) {
    strykerArgs.push(arg);
    if (!arg.includes('=') && args[index + 1] !== undefined && !args[index + 1].startsWith('--')) {
      strykerArgs.push(args[++index]);
    }
  } else targets.push(arg);
}

if (mode === 'list') {
  console.log(configuredFiles().join('\n'));
  process.exit(0);
}
if (mode === 'full') {
  process.exit(run(CONFIG, strykerArgs));
}
if (mode === 'files') {
  const files = targets.length > 0 ? targets : configuredFiles();
  let failed = 0;
  for (const file of files) {
    if (runOne(file) !== 0) failed++;
  }
  if (failed > 0)
    console.error(
      `${failed} of ${files.length} Stryker runs failed (their files are missing from the merge)`,
    );
}
process.exit(merge());

/** The files the config's `mutate` patterns match, in config order. */
function configuredFiles() {
  const patterns = config.mutate.filter((pattern) => !pattern.startsWith('!')).map(globToRegExp);
  const excluded = config.mutate
    .filter((pattern) => pattern.startsWith('!'))
    .map((p) => globToRegExp(p.slice(1)));
  const files = [];
  for (const [index, pattern] of patterns.entries()) {
    const glob = config.mutate.filter((p) => !p.startsWith('!'))[index];
    const base = glob.split('*')[0];
    const candidates =
      base === glob ? [glob] : listFiles(base.endsWith('/') ? base.slice(0, -1) : path.dirname(base));
    for (const file of candidates.filter((f) => pattern.test(f)).sort()) {
      if (!excluded.some((glob) => glob.test(file)) && !files.includes(file)) files.push(file);
    }
  }
  return files;
}

/** The two glob forms the config uses: `*` within a directory, `**\/` across directories. */
function globToRegExp(glob) {
  const source = glob
    .split(/(\*\*\/|\*)/)
    .map((part) =>
      part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${source}$`);
}

function listFiles(dir) {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(`${dir}/${entry.name}`) : [`${dir}/${entry.name}`],
  );
}

/**
 * One Stryker run over `target` (a file, or `file:lines`), from a config that imports stryker.config.mjs. The
 * mutants are judged by the file's own unit spec(s) beside it (`x.ts` -> `x.spec.ts`, `x.*.spec.ts`), not by every
 * spec that imports it: each mutant then loads one spec file, not a dozen (the library's specs that start Nest cost
 * seconds each), and a file's score says what its own spec proves. `--related` judges by every spec that imports it.
 */
function runOne(target) {
  const name = target.replace(/^.*\/src\//, '').replace(/[/:]/g, '_');
  const file = target.replace(/:[\d:-]+$/, '');
  const stem = file.replace(/^.*\/src\//, '').replace(/\.ts$/, '');
  const specs = `/src/${stem.replace(/[.+?^${}()|[\]\\]/g, '\\$&')}(\\.[^/]*)?\\.spec\\.ts$`;
  mkdirSync(PER_FILE, { recursive: true });
  const temp = path.join(REPORTS, `stryker.${name}.config.mjs`);
  writeFileSync(
    temp,
    [
      `import base from ${JSON.stringify(pathToFileURL(CONFIG).href)};`,
      'export default {',
      '  ...base,',
      `  mutate: [${JSON.stringify(target)}],`,
      ...(related
        ? []
        : [
            `  jest: { ...base.jest, config: { ...base.jest.config, testRegex: ${JSON.stringify(specs)} } },`,
          ]),
      `  jsonReporter: { fileName: ${JSON.stringify(`reports/mutation/files/${name}.json`)} },`,
      // Each run has its own sandbox directory, so runs can go side by side; the score is judged on the merge.
      `  tempDirName: ${JSON.stringify(`.stryker-tmp-${name}`)},`,
      '  thresholds: { ...base.thresholds, break: null },',
      '};',
      '',
    ].join('\n'),
  );
  const started = Date.now();
  console.log(`\n== ${target}`);
  const status = run(temp, strykerArgs);
  rmSync(temp, { force: true });
  console.log(`== ${target}: ${((Date.now() - started) / 60_000).toFixed(1)} min, exit ${status}`);
  return status;
}

function run(configFile, extra) {
  const result = spawnSync(process.execPath, [STRYKER, 'run', path.relative(ROOT, configFile), ...extra], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  return result.status ?? 1;
}

/** Merge the per-file reports into one schema-valid report; print the score per file and in total. */
function merge() {
  const reports = existsSync(PER_FILE)
    ? readdirSync(PER_FILE)
        .filter((name) => name.endsWith('.json'))
        .map((name) => ({ name, report: JSON.parse(readFileSync(path.join(PER_FILE, name), 'utf8')) }))
    : [];
  if (reports.length === 0) {
    console.error(`no per-file reports in ${path.relative(ROOT, PER_FILE)}: nothing to merge`);
    return 1;
  }
  const merged = { ...reports[0].report, files: {}, testFiles: {} };
  // Mutant and test ids are numbered per run. Mutants get the run's name as a prefix; a test keeps one id across
  // the runs that ran it (its file and name), so killedBy and coveredBy still point at it.
  const testIds = new Map();
  const stale = new Set();
  for (const { name, report } of reports) {
    const runTestId = new Map();
    for (const [file, result] of Object.entries(report.testFiles ?? {})) {
      const into = (merged.testFiles[file] ??= { ...result, tests: [] });
      for (const test of result.tests) {
        const key = `${file}\0${test.name}`;
        if (!testIds.has(key)) {
          testIds.set(key, String(testIds.size));
          into.tests.push({ ...test, id: testIds.get(key) });
        }
        runTestId.set(test.id, testIds.get(key));
      }
    }
    const tests = (ids) => ids.map((id) => runTestId.get(id) ?? `${name}#${id}`);
    for (const [file, result] of Object.entries(report.files)) {
      const into = (merged.files[file] ??= { ...result, mutants: [] });
      if (into.source !== result.source) stale.add(file);
      const current = readFileSync(path.join(ROOT, file), 'utf8');
      if (result.source !== current) stale.add(file);
      for (const mutant of result.mutants) {
        into.mutants.push({
          ...mutant,
          id: `${name.replace(/\.json$/, '')}#${mutant.id}`,
          ...(mutant.killedBy && { killedBy: tests(mutant.killedBy) }),
          ...(mutant.coveredBy && { coveredBy: tests(mutant.coveredBy) }),
        });
      }
    }
  }
  writeFileSync(MERGED, JSON.stringify(merged));
  for (const file of stale) {
    console.error(`${file}: its reports are not all of the file as it is now; re-run it`);
  }

  const rows = Object.entries(merged.files).map(([file, { mutants }]) => [file, count(mutants)]);
  const total = count(Object.values(merged.files).flatMap(({ mutants }) => mutants));
  const width = Math.max(...rows.map(([file]) => file.length), 5);
  const line = (label, c) =>
    `${label.padEnd(width)}  ${[c.Killed, c.Timeout, c.Survived, c.NoCoverage, c.Ignored + c.other]
      .map((n) => String(n).padStart(8))
      .join('')}  ${score(c)}`;
  console.log(`\n${'file'.padEnd(width)}    killed timeout survived no cov.  ignored  score`);
  for (const [file, c] of rows) console.log(line(file.replace(/^.*\/src\//, ''), c));
  console.log(line('all', total));
  console.log(`merged report: ${path.relative(ROOT, MERGED)} (${reports.length} runs)`);
  if (survivors) {
    for (const [file, { source, mutants }] of Object.entries(merged.files)) {
      const lines = source.split('\n');
      for (const m of mutants.filter(({ status }) => status === 'Survived' || status === 'NoCoverage')) {
        const { line, column } = m.location.start;
        console.log(
          `${m.status} ${file.replace(/^.*\/src\//, '')}:${line}:${column} ${m.mutatorName} ` +
            `${JSON.stringify(m.replacement)} | ${lines[line - 1].trim()}`,
        );
      }
    }
  }
  const breakAt = config.thresholds?.break;
  const value = percent(total);
  if (stale.size > 0) return 1;
  if (typeof breakAt === 'number' && value < breakAt) {
    console.error(`mutation score ${value.toFixed(2)} % is below the break threshold ${breakAt} %`);
    return 1;
  }
  return 0;
}

function count(mutants) {
  const c = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, Ignored: 0, other: 0 };
  for (const { status } of mutants) {
    if (status in c) c[status]++;
    else c.other++;
  }
  return c;
}

/** Killed + Timeout over every valid mutant (compile and runtime errors and Ignored are outside it). */
function percent(c) {
  const valid = c.Killed + c.Timeout + c.Survived + c.NoCoverage;
  return valid === 0 ? 100 : ((c.Killed + c.Timeout) / valid) * 100;
}

function score(c) {
  return `${percent(c).toFixed(2)} %`;
}
