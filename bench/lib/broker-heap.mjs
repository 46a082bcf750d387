/**
 * A full collection of the broker's heap before each system's latency run (`jcmd <pid> GC.run`), for a broker this
 * run started.
 *
 * At 2,000 msg/s the broker allocates fast enough that a young collection comes every few seconds with a small young
 * generation, so one or two of its pauses fell in most systems' 10-s windows, and whichever system met the longer
 * one had the worse 99th percentile: the broker's collector, not the consumer, set it. With the broker's heap collected
 * just before a run and a young generation that holds a whole run's allocation (broker-jvm.mjs), every system
 * starts from the same empty young generation and meets no collection of the broker while it is measured. The
 * breakdown still counts every broker safepoint in a window, so a pause that does come shows.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** BENCH_BROKER_COLLECT=0: leave the broker's heap alone between latency runs. */
export function wantsBrokerCollection(env = process.env) {
  return env.BENCH_BROKER_COLLECT?.trim() !== '0';
}

/**
 * Runs `jcmd <pid> GC.run` with the broker's Java (`javaHome`, or the PATH's). Resolves to `{ ok: true, ms }`, or
 * `{ ok: false, reason }` when jcmd is missing or refused (the run goes on, and says so).
 */
export function collectBrokerHeap(pid, javaHome) {
  const jcmd = javaHome ? join(javaHome, 'bin', 'jcmd') : 'jcmd';
  const started = Date.now();
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(jcmd, [String(pid), 'GC.run'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('error', (error) => resolve({ ok: false, reason: `${jcmd}: ${error.message}` }));
    child.once('close', (code) =>
      resolve(
        code === 0
          ? { ok: true, ms: Date.now() - started }
          : {
              ok: false,
              reason: `${jcmd} ${pid} GC.run exited with ${code}: ${output.trim().slice(0, 200)}`,
            },
      ),
    );
  });
}
