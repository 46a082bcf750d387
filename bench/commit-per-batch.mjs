#!/usr/bin/env node
/**
 * kafkajs's consumer as released (a commit after every batch) against the library's kafkajs instance (the carried
 * runner fix, commits every `autoCommitInterval`), same settings, same broker, rounds interleaved:
 * end-to-end latency (produce timestamp in the value → eachMessage) at a fixed rate, and the OffsetCommit requests
 * each sent (counted from kafkajs's REQUEST instrumentation event).
 *
 *   npm run build && KAFKA_BROKERS=127.0.0.1:9092 node bench/commit-per-batch.mjs [rounds=2] [rate=2000] [seconds=8]
 */
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

const require = createRequire(import.meta.url);
const released = require('kafkajs');
// The library's private kafkajs instance, carried fixes in place (not a public entry point of the package).
const library = await import('../packages/nest-kafka-groups/dist/client/kafkajs.js');
const fixed = { Kafka: library.Kafka, logLevel: library.KafkaLogLevel };

const [rounds = 2, rate = 2_000, seconds = 8] = process.argv.slice(2).map(Number);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const COMMIT_INTERVAL_MS = 1_000;

async function measure(name, { Kafka, logLevel }) {
  const topic = `commit-per-batch-${name}-${Date.now()}`;
  const kafka = new Kafka({ brokers, clientId: 'commit-per-batch', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }] });
  // A loaded broker answers metadata of a new topic with UNKNOWN_TOPIC_OR_PARTITION for a while.
  for (let i = 0; ; i++) {
    const ready = await admin
      .fetchTopicMetadata({ topics: [topic] })
      .then((m) => m.topics[0].partitions.every((p) => p.leader >= 0))
      .catch(() => false);
    if (ready) break;
    if (i === 100) throw new Error(`${topic}: no leaders after 20 s`);
    await sleep(200);
  }
  const consumer = kafka.consumer({
    groupId: topic,
    maxWaitTimeInMs: 500,
    heartbeatInterval: 500,
    sessionTimeout: 10_000,
  });
  let commits = 0;
  consumer.on(consumer.events.REQUEST, ({ payload }) => {
    if (payload.apiName === 'OffsetCommit') commits++;
  });
  const latencies = [];
  let measuring = false;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: 6,
    autoCommitInterval: COMMIT_INTERVAL_MS,
    eachMessage: async ({ message }) => {
      if (measuring) latencies.push(Date.now() - Number(message.value.toString().slice(0, 13)));
    },
  });
  await sleep(3_000);
  const producer = kafka.producer();
  await producer.connect();
  measuring = true;
  commits = 0;
  let sent = 0;
  const start = Date.now();
  while (Date.now() - start < seconds * 1_000) {
    const due = Math.floor(((Date.now() - start) / 1_000) * rate) - sent;
    if (due > 0) {
      const messages = [];
      for (let i = 0; i < due; i++)
        messages.push({ key: String(sent + i), value: String(Date.now()) + 'x'.repeat(287) });
      sent += due;
      await producer.send({ topic, acks: 1, messages });
    } else await sleep(1);
  }
  await sleep(1_500);
  const committed = commits;
  await consumer.disconnect();
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))];
  return { name, received: latencies.length, sent, p50: at(0.5), p99: at(0.99), commits: committed };
}

for (let round = 1; round <= rounds; round++) {
  for (const [name, module] of [
    ['released', released],
    ['fixed', fixed],
  ]) {
    const r = await measure(name, module);
    console.log(
      `round ${round} ${r.name.padEnd(8)} p50 ${r.p50} ms  p99 ${r.p99} ms  received ${r.received}/${r.sent}  OffsetCommit requests ${r.commits}`,
    );
  }
}
