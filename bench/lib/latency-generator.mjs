/**
 * The latency phase's generator, a child process of its own (forked by bench/run.mjs for each system's run, the
 * same way for every system): it connects a producer, reports `ready`, and on `go` produces `total` messages at
 * `rate` per second, then reports what it measured of itself and exits.
 *
 * Its own process so that a message's send is not held up by the orchestrator: that process has carried the whole
 * throughput phase (its heap, its GC, its admin client) and waits for the group beside the generator. Here the
 * generator's heap holds only its producer and the messages in flight.
 *
 * Job (argv[2], JSON): { brokers, topic, rate, total, warm }.
 */
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { send, summarizeLatencies, wallClockMs } from './child.mjs';
import { kafkaFor, newProducer, prepareLatencyMessages, stampPrefix } from './dataset.mjs';
import { round } from './stats.mjs';

/**
 * Produces `total` messages at `rate` per second (the first `warm` flagged as warm-up), stamped when sent, from the
 * messages `prepared` before the go (prepareLatencyMessages): between a stamp and its send only the stamp's text and
 * kafkajs's request are built, so less garbage and fewer GC pauses of the generator fall in that span. Also
 * measures itself after the warm-up: the gaps between its sends, the messages per send, the Produce round trips
 * (acks 1: send to the broker's append and back) and its own GC pauses.
 */
async function produceAtRate(producer, topic, { rate, total, warm }, { keys, rests, partitionOf }) {
  const started = performance.now();
  const inFlight = new Set();
  const produceMs = [];
  // Each send's stamp, in send order: one broker answers one connection's requests in order, so the n-th Produce
  // event is the n-th send's request, and its `sentAt` (kafkajs's Date.now() when it wrote the request to the
  // socket) says how long after the stamp the request left.
  const stamps = [];
  let answered = 0;
  const stampToWriteMs = [];
  const offRequest = producer.on(producer.events.REQUEST, ({ payload }) => {
    if (payload.apiName !== 'Produce') return;
    const stampedAt = stamps[answered++];
    if (sent >= warm) {
      produceMs.push(payload.duration);
      if (stampedAt !== undefined) stampToWriteMs.push(payload.sentAt - stampedAt);
    }
  });
  // Its own pauses: a GC between a message's stamp and its send counts as latency of every system alike.
  const gcMs = [];
  const gcObserver = new PerformanceObserver((list) => {
    if (sent >= warm) for (const entry of list.getEntries()) gcMs.push(entry.duration);
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const gapsMs = [];
  const perSend = [];
  let lastSendAt;
  let sent = 0;
  let failure;
  while (sent < total && !failure) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    if (due > sent) {
      const sentAt = wallClockMs();
      if (sent >= warm) {
        if (lastSendAt !== undefined) gapsMs.push(sentAt - lastSendAt);
        perSend.push(due - sent);
      }
      lastSendAt = sentAt;
      stamps.push(sentAt);
      const stamp = stampPrefix({ sentAt });
      const warmStamp = sent < warm ? stampPrefix({ sentAt, warm: true }) : stamp;
      const messages = [];
      for (; sent < due; sent++)
        messages.push({
          key: keys[sent],
          partition: partitionOf[sent],
          value: (sent < warm ? warmStamp : stamp) + rests[sent],
        });
      const send = producer
        .send({ topic, acks: 1, messages })
        .catch((error) => (failure = error))
        .finally(() => inFlight.delete(send));
      inFlight.add(send);
    }
    await sleep(2);
  }
  await Promise.all(inFlight);
  offRequest();
  gcObserver.disconnect();
  if (failure) throw failure;
  return {
    seconds: (performance.now() - started) / 1000,
    generator: {
      sends: perSend.length,
      gapMs: percentiles(gapsMs),
      messagesPerSend: percentiles(perSend),
      produceRequestMs: percentiles(produceMs),
      stampToWriteMs: percentiles(stampToWriteMs),
      gc: {
        count: gcMs.length,
        totalMs: round(
          gcMs.reduce((sum, ms) => sum + ms, 0),
          1,
        ),
        ...percentiles(gcMs),
      },
    },
  };
}

function percentiles(values) {
  const { p50, p99, max } = summarizeLatencies(values);
  return { p50: round(p50, 2), p99: round(p99, 2), max: round(max, 2) };
}

const job = JSON.parse(process.argv[2]);
// The orchestrator gone (Ctrl-C, a crash), nothing will say `go` or read the result.
process.once('disconnect', () => process.exit(1));
const producer = newProducer(kafkaFor(job.brokers, 'bench-latency-generator'));
try {
  const prepared = prepareLatencyMessages(job.total);
  await producer.connect();
  const go = new Promise((resolve) =>
    process.on('message', (message) => {
      if (message.type === 'go') resolve();
    }),
  );
  await send({ type: 'ready' });
  await go;
  const produced = await produceAtRate(producer, job.topic, job, prepared);
  await send({ type: 'result', produced });
  await producer.disconnect();
  process.exit(0);
} catch (error) {
  await send({ type: 'error', error: error?.stack ?? String(error) });
  process.exit(1);
}
