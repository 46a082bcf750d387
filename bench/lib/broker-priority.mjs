/**
 * The scheduling priority of the broker this run started, raised for the latency phase only.
 *
 * The broker stands for a host of its own, yet here it shares two cores with the generator and the system under
 * test: a fetch answer the kernel's scheduler holds behind a client's work shows up as the client's latency. A
 * higher CFS weight (a negative nice, not real-time scheduling) serves the broker's threads first when they are
 * runnable, the same way for every system; its GC pauses still count, as before. Linux sets a nice value per
 * thread, so every thread of the JVM is changed, and the threads it starts later inherit their creator's value.
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';

/** BENCH_BROKER_NICE: the broker's nice during the latency phase; 0 leaves it as started. */
export const DEFAULT_BROKER_LATENCY_NICE = -5;

export function brokerLatencyNice(env = process.env) {
  const raw = env.BENCH_BROKER_NICE?.trim();
  if (!raw) return DEFAULT_BROKER_LATENCY_NICE;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < -20 || value > 19)
    throw new RangeError(`BENCH_BROKER_NICE must be an integer from -20 to 19, got "${raw}"`);
  return value;
}

function threadsOf(pid) {
  return readdirSync(`/proc/${pid}/task`).map(Number);
}

/** A thread may end between the listing and the call: that one is skipped. */
function setThreadNice(tid, nice) {
  try {
    os.setPriority(tid, nice);
  } catch (error) {
    if (error.code !== 'ESRCH') throw error;
  }
}

/**
 * Sets every thread of `pid` to `nice`. Returns `{ nice, threads, restore }` (restore puts each thread back to the
 * value it had, and threads started since to the main thread's) or `{ nice: null, reason }` when the system refused
 * (not root, no /proc): the run goes on at the priority it has and the report says so.
 */
export function setProcessNice(pid, nice) {
  const before = new Map();
  const restore = () => {
    const fallback = before.get(pid) ?? 0;
    for (const tid of threadsOf(pid)) setThreadNice(tid, before.get(tid) ?? fallback);
  };
  try {
    for (const tid of threadsOf(pid)) before.set(tid, os.getPriority(tid));
    for (const tid of before.keys()) setThreadNice(tid, nice);
    return { nice, threads: before.size, restore };
  } catch (error) {
    try {
      restore();
    } catch {
      // Nothing was changed, or the process is gone.
    }
    return { nice: null, reason: error.code ?? error.message };
  }
}
