/**
 * CI's summary against each case that once printed `0 failed` while something failed. The reports are what
 * Jest 30 writes with `--json` for those cases (fields it does not read left out).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from '@jest/globals';
import { summarize } from './test-summary.mjs';

const SCRIPT = fileURLToPath(new URL('./test-summary.mjs', import.meta.url));

function passing(name, tests = 2) {
  return {
    success: true,
    numPassedTests: tests,
    numFailedTests: 0,
    numPendingTests: 0,
    numTodoTests: 0,
    numRuntimeErrorTestSuites: 0,
    testResults: [
      { name, status: 'passed', message: '', assertionResults: Array(tests).fill({ status: 'passed' }) },
    ],
  };
}

/** A suite whose tests all passed and whose `afterAll` threw. */
const AFTER_ALL_ERROR = {
  success: false,
  numPassedTests: 1,
  numFailedTests: 0,
  numPendingTests: 1,
  numTodoTests: 1,
  numRuntimeErrorTestSuites: 1,
  testResults: [
    {
      name: '/repo/test/x.e2e-spec.ts',
      status: 'failed',
      message:
        '\n\n  ● Test suite failed to run\n\n    teardown broke\n\n      at Object.<anonymous> (x.e2e-spec.ts:2:30)',
      assertionResults: [{ status: 'passed' }, { status: 'pending' }, { status: 'todo' }],
    },
  ],
};

let folder;
afterEach(() => rmSync(folder, { recursive: true, force: true }));

function reports(files) {
  folder = mkdtempSync(join(tmpdir(), 'test-summary-'));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(
      join(folder, `${name}.json`),
      typeof content === 'string' ? content : JSON.stringify(content),
    );
  }
  return folder;
}

/** Runs the script as CI does; returns its last line and exit code. */
function cli(dir, ...expected) {
  try {
    const out = execFileSync(process.execPath, [SCRIPT, dir, ...expected], { encoding: 'utf8' });
    return { lines: out.trim().split('\n'), code: 0 };
  } catch (error) {
    return { lines: String(error.stdout).trim().split('\n'), code: error.status };
  }
}

describe('test-summary', () => {
  it('adds up reports that all passed, and exits 0', () => {
    const dir = reports({ unit: passing('u', 3), e2e: passing('e', 4), faults: passing('f', 7) });
    expect(summarize(dir, ['unit', 'e2e', 'faults'])).toEqual({
      passed: 14,
      failed: 0,
      skipped: 0,
      problems: [],
    });
    expect(cli(dir, 'unit', 'e2e', 'faults')).toEqual({
      lines: ['0 skipped', '14 passed, 0 failed'],
      code: 0,
    });
  });

  it('counts a suite that failed in afterAll with all its tests passed, and prints the skipped count', () => {
    const dir = reports({ unit: passing('u'), e2e: AFTER_ALL_ERROR });
    const summary = summarize(dir, ['unit', 'e2e']);
    expect(summary).toMatchObject({ passed: 3, failed: 1, skipped: 2 });
    expect(summary.problems).toEqual([
      expect.stringMatching(
        /e2e\.json: suite failed outside its tests: \/repo\/test\/x\.e2e-spec\.ts: teardown broke$/,
      ),
    ]);
    const run = cli(dir, 'unit', 'e2e');
    expect(run.code).toBe(1);
    expect(run.lines.slice(-2)).toEqual(['2 skipped', '3 passed, 1 failed']);
  });

  it('counts a missing unit.json (a failed build) and the e2e.json that was never written', () => {
    const dir = reports({ faults: passing('f', 7) });
    const summary = summarize(dir, ['unit', 'e2e', 'faults']);
    expect(summary).toMatchObject({ passed: 7, failed: 2 });
    expect(summary.problems).toEqual([
      expect.stringMatching(/unit\.json: missing/),
      expect.stringMatching(/e2e\.json: missing/),
    ]);
    expect(cli(dir, 'unit', 'e2e', 'faults')).toMatchObject({ code: 1 });
  });

  it('counts a missing e2e.json after a failing global setup while unit passed', () => {
    const dir = reports({ unit: passing('u', 5) });
    expect(summarize(dir, ['unit', 'e2e'])).toMatchObject({ passed: 5, failed: 1 });
    expect(cli(dir, 'unit', 'e2e').lines.at(-1)).toBe('5 passed, 1 failed');
  });

  it('fails when the folder does not exist at all', () => {
    folder = join(tmpdir(), 'test-summary-nowhere');
    expect(summarize(folder, ['unit'])).toMatchObject({ passed: 0, failed: 1 });
  });

  it('fails when no expected report is named', () => {
    const dir = reports({ unit: passing('u') });
    expect(summarize(dir, [])).toMatchObject({ failed: 1 });
  });

  it('counts runtime-error suites that the report lists only as a number', () => {
    const dir = reports({
      faults: {
        success: false,
        numPassedTests: 6,
        numFailedTests: 0,
        numRuntimeErrorTestSuites: 1,
        testResults: [],
      },
    });
    expect(summarize(dir, ['faults'])).toMatchObject({ passed: 6, failed: 1 });
  });

  it('counts success: false when nothing else was counted', () => {
    const dir = reports({ e2e: { ...passing('e'), success: false } });
    const summary = summarize(dir, ['e2e']);
    expect(summary).toMatchObject({ passed: 2, failed: 1 });
    expect(summary.problems).toEqual([expect.stringMatching(/success is false/)]);
  });

  it('does not count a failed suite twice when its failing tests are counted', () => {
    const report = passing('e', 2);
    report.success = false;
    report.numPassedTests = 1;
    report.numFailedTests = 1;
    report.testResults[0] = {
      name: 'e',
      status: 'failed',
      message: 'expect(received)',
      assertionResults: [{ status: 'passed' }, { status: 'failed' }],
    };
    expect(summarize(reports({ e2e: report }), ['e2e'])).toMatchObject({ passed: 1, failed: 1 });
  });

  it('names each failed test with its suite and the first line of its failure, before the count', () => {
    const report = passing('/repo/test/e.e2e-spec.ts', 2);
    report.success = false;
    report.numPassedTests = 1;
    report.numFailedTests = 1;
    report.testResults[0] = {
      name: '/repo/test/e.e2e-spec.ts',
      status: 'failed',
      message: '',
      assertionResults: [
        { status: 'passed', fullName: 'group joins' },
        {
          status: 'failed',
          fullName: 'group survives a restart',
          failureMessages: [
            'Error: Timed out after 60000 ms waiting for health up again\n    at wait (x.ts:1:1)',
          ],
        },
      ],
    };
    const dir = reports({ e2e: report });
    expect(summarize(dir, ['e2e']).problems).toEqual([
      expect.stringMatching(
        /e2e\.json: failed: \/repo\/test\/e\.e2e-spec\.ts › group survives a restart: Error: Timed out after 60000 ms waiting for health up again$/,
      ),
    ]);
    const run = cli(dir, 'e2e');
    expect(run.lines.slice(-3)).toEqual([
      expect.stringMatching(/failed: .* › group survives a restart: Error: Timed out/),
      '0 skipped',
      '1 passed, 1 failed',
    ]);
  });

  it('fails on a report that ran no tests, an unreadable one, and one without counts', () => {
    const dir = reports({
      unit: { success: true, numPassedTests: 0, numFailedTests: 0, testResults: [] },
      e2e: '{"numPassedTests": 3,',
      faults: { success: true },
    });
    const summary = summarize(dir, ['unit', 'e2e', 'faults']);
    expect(summary).toMatchObject({ passed: 0, failed: 3 });
    expect(summary.problems).toEqual([
      expect.stringMatching(/unit\.json: ran no tests/),
      expect.stringMatching(/e2e\.json: unreadable/),
      expect.stringMatching(/faults\.json: not a jest --json report/),
    ]);
  });

  it('counts and names a report that was not expected', () => {
    const dir = reports({ unit: passing('u'), extra: AFTER_ALL_ERROR });
    const summary = summarize(dir, ['unit']);
    expect(summary).toMatchObject({ passed: 3, failed: 1 });
    expect(summary.problems[0]).toMatch(/extra\.json: not an expected report/);
  });
});
