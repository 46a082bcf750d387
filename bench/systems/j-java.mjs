/**
 * System j: a plain Java consumer (bench/systems/java/BenchConsumer.java, kafka-clients from the broker's jars), the
 * JVM reference. This process only starts the JVM and speaks the children's protocol for it: the JVM measures itself
 * (time, CPU, peak RSS of the JVM process) and sends what it saw; the check against the data set and the latency
 * percentiles are computed here with the same code as for the Node systems.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { send, summarizeLatencies, verifyRecording } from '../lib/child.mjs';
import { breakdown, MessageMarks, readBrokerGcPauses } from '../lib/latency-probe.mjs';
import { javaClasspath } from '../lib/java.mjs';
import { REPO_ROOT } from '../lib/settings.mjs';

/** A heap bound like a container's; everything else is the JVM's default (G1 on 2 cores and more). */
const JVM_OPTIONS = ['-Xms256m', '-Xmx512m'];

const job = JSON.parse(process.argv[2]);
/** JIT warm-up before a throughput run (BenchConsumer.warmUp): enough calls for the hot paths to be compiled. */
const WARMUP_MESSAGES = 50_000;

async function main() {
  const classpath = await javaClasspath();
  const javaJob =
    job.kind === 'throughput' ? { ...job, warmupMessages: Math.min(job.total, WARMUP_MESSAGES) } : job;
  const java = spawn('java', [...JVM_OPTIONS, '-cp', classpath, 'BenchConsumer', JSON.stringify(javaJob)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderrTail = [];
  createInterface({ input: java.stderr }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 30) stderrTail.shift();
  });
  const deadline = setTimeout(() => {
    void send({ type: 'error', error: `timed out after ${job.timeoutMs} ms\n${stderrTail.join('\n')}` });
    java.kill('SIGKILL');
  }, job.timeoutMs);
  let reported = false;
  for await (const line of createInterface({ input: java.stdout })) {
    const space = line.indexOf(' ');
    const kind = space < 0 ? line : line.slice(0, space);
    const payload = space < 0 ? '' : line.slice(space + 1);
    if (kind === 'READY') await send({ type: 'ready' });
    else if (kind === 'RESULT') {
      clearTimeout(deadline);
      const recorded = JSON.parse(payload);
      const result = { ...recorded };
      // The marks and raw latencies are checked and summarised here, not passed on.
      for (const mark of ['seenOffsets', 'seenSeqs', 'unexpected', 'latencies', 'latencyMarks'])
        delete result[mark];
      if (recorded.seenSeqs !== undefined) {
        result.verification = verifyRecording(job, recorded);
        result.duplicates = result.verification.duplicateOffsets;
      }
      if (recorded.latencies !== undefined) result.latencies = summarizeLatencies(recorded.latencies);
      if (recorded.latencyMarks !== undefined) result.breakdown = javaBreakdown(recorded.latencyMarks, job);
      await send({ type: 'result', result });
      reported = true;
    } else if (kind === 'STOPPED') {
      const stopped = JSON.parse(payload);
      await send({ type: 'stopped', outcome: stopped.outcome, stopMs: stopped.stopMs });
    } else if (kind === 'ERROR') {
      await send({ type: 'error', error: `${payload}\n${stderrTail.join('\n')}` });
      reported = true;
    }
  }
  const code = await new Promise((resolve) =>
    java.exitCode !== null ? resolve(java.exitCode) : java.once('close', resolve),
  );
  clearTimeout(deadline);
  if (!reported)
    await send({
      type: 'error',
      error: `the JVM exited (${code}) without a result\n${stderrTail.join('\n')}`,
    });
  process.exit(code === 0 && reported ? 0 : 1);
}

/** The JVM's marks (BenchConsumer.latencyMarks) through the Node systems' breakdown. */
function javaBreakdown({ requests, gcs, ...columns }, job) {
  const marks = new MessageMarks(columns.sent.length);
  for (const name of ['sent', 'append', 'fetchStart', 'fetchEnd', 'handler']) marks[name].set(columns[name]);
  marks.count = columns.sent.length;
  return breakdown(marks, { requests, gcs, brokerGcs: readBrokerGcPauses(job.brokerGcLog) });
}

main().catch(async (error) => {
  await send({ type: 'error', error: error?.stack ?? String(error) });
  process.exit(1);
});
