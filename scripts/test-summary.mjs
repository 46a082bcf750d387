#!/usr/bin/env node
/**
 * Prints `N passed, N failed` over every jest `--json` report in a folder (unit, e2e, faults), for CI.
 * A suite that failed to run (no tests counted but marked failed) counts as one failure.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const folder = process.argv[2] ?? 'reports';
let passed = 0;
let failed = 0;
const reports = existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith('.json')) : [];
for (const file of reports) {
  const report = JSON.parse(readFileSync(join(folder, file), 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  failed += report.testResults.filter((r) => r.status === 'failed' && r.assertionResults.length === 0).length;
}
if (reports.length === 0) failed += 1;
console.log(`${passed} passed, ${failed} failed`);
