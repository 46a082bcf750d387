#!/usr/bin/env node
/**
 * CI's benchmark smoke: `node scripts/bench-smoke.mjs [reports folder]` (default `reports`), after `npm run build`.
 *
 * Runs the benchmark's throughput phase in quick mode over a few thousand messages: every system of
 * bench/lib/settings.mjs starts, consumes the data set and must commit to its end. The benchmark starts its own
 * broker on BENCH_SMOKE_PORT / BENCH_SMOKE_CONTROLLER_PORT (default 19792 / 19793) and stops it at the end. Writes
 * the benchmark's results to `<folder>/bench/quick.json` (nothing under docs/ or bench/results/) and a jest-shaped
 * `<folder>/bench.json` with one test per system for scripts/test-summary.mjs. A system that fails to start, fails
 * its run, or does not commit to the end is a failed test; so is a benchmark that ends without results or with a
 * failing exit code.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_DIR, SYSTEMS } from '../bench/lib/settings.mjs';

const MESSAGES = 3000;
/** The whole run's bound: far above a quiet machine's time, so only a hung benchmark reaches it. */
const TIMEOUT_MS = 600_000;
const SUITE = 'bench/run.mjs --quick (smoke)';

/**
 * The jest `--json` shape of one smoke run. `results`: the benchmark's results file (undefined when it wrote none);
 * `exitCode`: the benchmark's exit code (or signal); `reason`: why it ended early, when it did.
 */
export function smokeReport({ results, exitCode, reason, startTime, endTime, systems = SYSTEMS }) {
  const runs = new Map((results?.runs ?? []).map((run) => [run.system, run]));
  const assertionResults = systems.map((system) => {
    const run = runs.get(system.id);
    const failure = !run
      ? `no run: the benchmark ended before system ${system.id} ran (${reason ?? `exit ${exitCode}`})`
      : run.error
        ? `failed: ${run.error}`
        : !run.committedToEnd
          ? `did not commit every partition to the end of the data set (group of system ${system.id})`
          : undefined;
    return {
      title: `system ${system.id} (${system.label}) starts, consumes ${results?.settings?.messages ?? MESSAGES} messages and commits to the end`,
      fullName: `${SUITE} system ${system.id}`,
      status: failure ? 'failed' : 'passed',
      failureMessages: failure ? [`system ${system.id}: ${failure}`] : [],
    };
  });
  const failedSystems = assertionResults.filter((a) => a.status === 'failed').length;
  if (exitCode !== 0 && failedSystems === 0) {
    assertionResults.push({
      title: 'the benchmark exits 0',
      fullName: `${SUITE} exit code`,
      status: 'failed',
      failureMessages: [
        `bench/run.mjs ended with ${reason ?? `exit ${exitCode}`} although every system passed`,
      ],
    });
  }
  const failed = assertionResults.filter((a) => a.status === 'failed');
  const passed = assertionResults.length - failed.length;
  return {
    success: failed.length === 0,
    numTotalTests: assertionResults.length,
    numPassedTests: passed,
    numFailedTests: failed.length,
    numPendingTests: 0,
    numTodoTests: 0,
    numTotalTestSuites: 1,
    numPassedTestSuites: failed.length === 0 ? 1 : 0,
    numFailedTestSuites: failed.length === 0 ? 0 : 1,
    numRuntimeErrorTestSuites: 0,
    startTime,
    testResults: [
      {
        name: SUITE,
        status: failed.length === 0 ? 'passed' : 'failed',
        message: failed.flatMap((a) => a.failureMessages).join('\n'),
        startTime,
        endTime,
        assertionResults,
      },
    ],
  };
}

function runBench(out) {
  const env = {
    ...process.env,
    KAFKA_PORT: process.env.BENCH_SMOKE_PORT ?? '19792',
    KAFKA_CONTROLLER_PORT: process.env.BENCH_SMOKE_CONTROLLER_PORT ?? '19793',
  };
  // Its own broker, never one named for the tests.
  delete env.KAFKA_BROKERS;
  delete env.KAFKA_NODES;
  const args = [
    join(BENCH_DIR, 'run.mjs'),
    '--quick',
    '--phases',
    'throughput',
    '--messages',
    String(MESSAGES),
    '--no-docs',
    '--out',
    out,
  ];
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    let reason;
    // SIGTERM first: the benchmark then stops the broker it started.
    const timer = setTimeout(() => {
      reason = `timed out after ${TIMEOUT_MS / 1000} s`;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
    }, TIMEOUT_MS);
    child.on('error', (error) => {
      reason = `could not start: ${error.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ exitCode: code ?? signal, reason });
    });
  });
}

async function main() {
  const folder = resolve(process.argv[2] ?? 'reports');
  const out = join(folder, 'bench', 'quick.json');
  mkdirSync(join(folder, 'bench'), { recursive: true });
  rmSync(out, { force: true });
  const startTime = Date.now();
  const { exitCode, reason } = await runBench(out);
  const endTime = Date.now();
  const results = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : undefined;
  const report = smokeReport({ results, exitCode, reason, startTime, endTime });
  writeFileSync(join(folder, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `[bench-smoke] ${report.numPassedTests} passed, ${report.numFailedTests} failed in ${Math.round((endTime - startTime) / 1000)} s`,
  );
  for (const message of report.testResults[0].message.split('\n').filter(Boolean))
    console.log(`[bench-smoke] ${message}`);
  return report.success ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main();
}
