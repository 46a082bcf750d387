/**
 * CI's benchmark smoke verdict: each way a benchmark run can go wrong fails the system it concerns, and the
 * summary counts it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { SYSTEMS } from '../bench/lib/settings.mjs';
import { smokeReport } from './bench-smoke.mjs';
import { summarize } from './test-summary.mjs';

const ok = (system) => ({ round: 1, system, committedToEnd: true, msgsPerSec: 1000 });
const allOk = () => ({ settings: { messages: 3000 }, runs: SYSTEMS.map((s) => ok(s.id)) });
const times = { startTime: 1, endTime: 2 };

function failedOf(report) {
  return report.testResults[0].assertionResults.filter((a) => a.status === 'failed');
}

describe('smokeReport', () => {
  let folder;
  afterEach(() => folder && rmSync(folder, { recursive: true, force: true }));

  it('passes one test per system when every system ran and committed to the end', () => {
    const report = smokeReport({ results: allOk(), exitCode: 0, ...times });
    expect(report).toMatchObject({ success: true, numPassedTests: SYSTEMS.length, numFailedTests: 0 });
    expect(report.testResults[0].assertionResults.map((a) => a.fullName)).toEqual(
      SYSTEMS.map((s) => `bench/run.mjs --quick (smoke) system ${s.id}`),
    );
  });

  it('fails a system whose child failed to start, with its error', () => {
    const results = allOk();
    results.runs[3] = {
      round: 1,
      system: 'd',
      committedToEnd: false,
      error: 'child exited (1) without a result',
    };
    const report = smokeReport({ results, exitCode: 1, ...times });
    expect(report).toMatchObject({ success: false, numFailedTests: 1, numPassedTests: SYSTEMS.length - 1 });
    expect(failedOf(report)[0].failureMessages[0]).toBe(
      'system d: failed: child exited (1) without a result',
    );
  });

  it('fails a system that did not commit to the end', () => {
    const results = allOk();
    results.runs[4] = { ...ok('e'), committedToEnd: false };
    const report = smokeReport({ results, exitCode: 1, ...times });
    expect(failedOf(report).map((a) => a.fullName)).toEqual(['bench/run.mjs --quick (smoke) system e']);
    expect(failedOf(report)[0].failureMessages[0]).toMatch(/did not commit every partition/);
  });

  it('fails every system when the benchmark wrote no results (broker did not start, crash, time-out)', () => {
    const report = smokeReport({
      results: undefined,
      exitCode: 'SIGTERM',
      reason: 'timed out after 600 s',
      ...times,
    });
    expect(report.numFailedTests).toBe(SYSTEMS.length);
    expect(failedOf(report)[0].failureMessages[0]).toMatch(
      /ended before system a ran \(timed out after 600 s\)/,
    );
  });

  it('fails a system missing from the results', () => {
    const results = allOk();
    results.runs = results.runs.filter((r) => r.system !== 'j');
    expect(failedOf(smokeReport({ results, exitCode: 0, ...times })).map((a) => a.fullName)).toEqual([
      'bench/run.mjs --quick (smoke) system j',
    ]);
  });

  it('fails on a failing exit code even when every system passed', () => {
    const report = smokeReport({ results: allOk(), exitCode: 1, ...times });
    expect(report).toMatchObject({ success: false, numFailedTests: 1, numPassedTests: SYSTEMS.length });
  });

  it("is counted by CI's summary", () => {
    folder = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
    const results = allOk();
    results.runs[0] = { ...ok('a'), error: 'boom' };
    writeFileSync(
      join(folder, 'bench.json'),
      JSON.stringify(smokeReport({ results, exitCode: 1, ...times })),
    );
    expect(summarize(folder, ['bench'])).toMatchObject({ passed: SYSTEMS.length - 1, failed: 1 });
  });
});
