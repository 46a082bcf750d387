/** The latency phase's broker priority: the setting, and every thread of a real process changed and put back. */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { brokerLatencyNice, DEFAULT_BROKER_LATENCY_NICE, setProcessNice } from './broker-priority.mjs';

describe('brokerLatencyNice', () => {
  it('defaults to a raised priority and reads BENCH_BROKER_NICE', () => {
    expect(brokerLatencyNice({})).toBe(DEFAULT_BROKER_LATENCY_NICE);
    expect(DEFAULT_BROKER_LATENCY_NICE).toBeLessThan(0);
    expect(brokerLatencyNice({ BENCH_BROKER_NICE: '0' })).toBe(0);
    expect(brokerLatencyNice({ BENCH_BROKER_NICE: ' -3 ' })).toBe(-3);
  });

  it('names the setting and the value it refuses', () => {
    expect(() => brokerLatencyNice({ BENCH_BROKER_NICE: 'high' })).toThrow(/BENCH_BROKER_NICE.*"high"/);
    expect(() => brokerLatencyNice({ BENCH_BROKER_NICE: '-21' })).toThrow(/BENCH_BROKER_NICE/);
  });
});

describe('setProcessNice', () => {
  let child;
  afterEach(() => child?.kill('SIGKILL'));

  const nicesOf = (pid) => readdirSync(`/proc/${pid}/task`).map((tid) => os.getPriority(Number(tid)));

  /** A Node process has several threads (V8's platform workers), which the change must all reach. */
  async function startProcess() {
    child = spawn(process.execPath, ['-e', 'process.send("up"); setInterval(() => {}, 1000)'], {
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    await new Promise((resolve) => child.once('message', resolve));
    return child.pid;
  }

  it('sets every thread of the process and restores each one', async () => {
    const pid = await startProcess();
    const before = nicesOf(pid);
    expect(before.length).toBeGreaterThan(1);
    // A lower priority than ours is allowed without privileges, so the spec runs as any user.
    const target = Math.min(19, os.getPriority() + 5);
    const changed = setProcessNice(pid, target);
    expect(changed).toMatchObject({ nice: target, threads: before.length });
    expect(nicesOf(pid).every((n) => n === target)).toBe(true);
    changed.restore();
    expect(nicesOf(pid)).toEqual(before);
  });

  it('reports a process it cannot reach instead of throwing', () => {
    const outcome = setProcessNice(2 ** 22 + 1, 0);
    expect(outcome.nice).toBeNull();
    expect(outcome.reason).toEqual(expect.any(String));
  });
});
