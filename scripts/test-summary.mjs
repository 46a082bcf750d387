#!/usr/bin/env node
/**
 * CI's count: `node scripts/test-summary.mjs <folder> <report> ...`, e.g. `reports unit e2e faults`.
 *
 * Reads `<folder>/<report>.json` (jest's `--json` shape) for each expected report and prints what went wrong
 * (each failed test by suite and name, with its failure's first line, so that a log's tail names it), the skipped
 * count, and last `N passed, N failed`; exits 1 when anything failed. Each of these counts as a failure, because
 * each has printed `0 failed` before:
 * - an expected report that is missing or unreadable (a failed build writes no unit.json; a failing e2e global
 *   setup writes no e2e.json);
 * - a suite that failed without a failing test (an error in `afterAll`, a suite that could not load);
 * - a report whose `success` is false with nothing else counted, or that ran no tests at all.
 * A report in the folder that was not asked for is counted too, and named, so it cannot go unseen.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @param {string} folder
 * @param {string[]} expected report names, without `.json`
 * @returns {{ passed: number, failed: number, skipped: number, problems: string[] }}
 */
export function summarize(folder, expected) {
  const present = existsSync(folder)
    ? readdirSync(folder)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length))
    : [];
  const total = { passed: 0, failed: 0, skipped: 0, problems: [] };
  if (expected.length === 0) {
    total.failed += 1;
    total.problems.push('no expected reports named (usage: test-summary.mjs <folder> <report> ...)');
  }
  for (const name of [...expected, ...present.filter((p) => !expected.includes(p)).sort()]) {
    const file = join(folder, `${name}.json`);
    if (!expected.includes(name)) total.problems.push(`${file}: not an expected report; counted anyway`);
    if (!existsSync(file)) {
      total.failed += 1;
      total.problems.push(`${file}: missing (its step failed before writing it)`);
      continue;
    }
    let report;
    try {
      report = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      total.failed += 1;
      total.problems.push(`${file}: unreadable: ${error.message}`);
      continue;
    }
    const counted = countReport(report);
    total.passed += counted.passed;
    total.failed += counted.failed;
    total.skipped += counted.skipped;
    total.problems.push(...counted.problems.map((p) => `${file}: ${p}`));
  }
  return total;
}

function countReport(report) {
  const problems = [];
  const number = (key) => (Number.isInteger(report[key]) ? report[key] : 0);
  if (!Number.isInteger(report.numPassedTests) || !Number.isInteger(report.numFailedTests)) {
    return { passed: 0, failed: 1, skipped: 0, problems: ['not a jest --json report (no test counts)'] };
  }
  const passed = report.numPassedTests;
  let failed = report.numFailedTests;
  const skipped = number('numPendingTests') + number('numTodoTests');
  const suites = Array.isArray(report.testResults) ? report.testResults : [];
  const brokenSuites = suites.filter(
    (s) => s.status === 'failed' && !(s.assertionResults ?? []).some((a) => a.status === 'failed'),
  );
  for (const suite of suites) {
    for (const test of suite.assertionResults ?? []) {
      if (test.status !== 'failed') continue;
      const name = test.fullName ?? test.title ?? '(unnamed test)';
      problems.push(`failed: ${suite.name} › ${name}: ${firstLine(test.failureMessages?.[0])}`);
    }
  }
  for (const suite of brokenSuites) {
    problems.push(`suite failed outside its tests: ${suite.name}: ${firstLine(suite.message)}`);
  }
  // Jest counts the same suites as runtime errors; a report without per-suite entries has only this count.
  const suiteFailures = Math.max(brokenSuites.length, number('numRuntimeErrorTestSuites'));
  failed += suiteFailures;
  if (report.success === false && failed === 0) {
    failed += 1;
    problems.push('success is false with no failed test or suite counted');
  }
  if (passed + failed + skipped === 0) {
    failed += 1;
    problems.push('ran no tests');
  }
  return { passed, failed, skipped, problems };
}

function firstLine(message) {
  const line = String(message ?? '')
    // eslint-disable-next-line no-control-regex -- Jest's failure messages carry colour codes
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.replace(/^\s*●\s*/, '').trim())
    .filter((l) => l && l !== 'Test suite failed to run')[0];
  return line ?? '(no message)';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [folder = 'reports', ...expected] = process.argv.slice(2);
  const { passed, failed, skipped, problems } = summarize(folder, expected);
  for (const problem of problems) console.log(problem);
  console.log(`${skipped} skipped`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}
