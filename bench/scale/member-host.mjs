/**
 * One process of the scale benchmark (bench/scale.mjs): hosts consumer-group members of this project, one Nest
 * application per member (KafkaModule.forRoot + a feature module with the group and a `@KafkaHandler` over the
 * step's topics), added and closed on the orchestrator's commands over IPC.
 *
 * Commands: { type: 'add', id, groupId, topics, brokers } -> { type: 'added', id, bootMs }
 *           { type: 'window' }     -> { type: 'window', received, maxLatencyMs, p99LatencyMs, runs, seqs, offsets }
 *                                     since the last window (per message: its traffic run, seq, and
 *                                     `topic:partition:offset`)
 *           { type: 'close', ids } -> { type: 'closed', ids, ms } (each app closed: commit, leave the group)
 * The handler records each message's end-to-end latency (`sentAt` in the value, same machine clock) and its
 * traffic run, seq and offset, so the orchestrator counts losses and repeats over both processes, and tells a
 * redelivery (an offset handled twice) from a message the producer wrote twice (a seq at two offsets).
 */
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { wallClockMs } from '../lib/child.mjs';
import { decorateClass, decorateMethod, importLibrary, NEST_LOG_LEVELS } from '../lib/nest.mjs';
import { CLIENT_RETRY } from '../lib/settings.mjs';

const { KafkaGroupsServer, KafkaHandler, KafkaModule } = await importLibrary();

const apps = new Map();
let latencies = [];
let runs = [];
let seqs = [];
let offsets = [];

function record(position, ctx) {
  latencies.push(wallClockMs() - position.sentAt);
  runs.push(position.run);
  seqs.push(position.seq);
  offsets.push(`${ctx.topic}:${ctx.partition}:${ctx.offset}`);
}

async function addMember({ id, groupId, topics, brokers }) {
  class ScaleController {
    onPosition(position, ctx) {
      record(position, ctx);
    }
  }
  decorateMethod(
    ScaleController,
    'onPosition',
    [KafkaHandler(topics)],
    [
      [0, Payload()],
      [1, Ctx()],
    ],
  );
  decorateClass(ScaleController, [Controller()]);
  class ScaleFeatureModule {}
  decorateClass(ScaleFeatureModule, [
    Module({ imports: [KafkaModule.forFeature({ groupId })], controllers: [ScaleController] }),
  ]);
  class ScaleAppModule {}
  decorateClass(ScaleAppModule, [
    Module({
      imports: [
        KafkaModule.forRoot({
          brokers,
          clientId: `scale-${id}`,
          clientRetry: CLIENT_RETRY,
          // Each step's topics are fresh: a partition nobody committed yet is read from its start, not skipped.
          fromBeginning: true,
          // The orchestrator created every topic and its dead-letter topic, as a fleet's provisioning would.
          topics: { create: false },
        }),
        ScaleFeatureModule,
      ],
    }),
  ]);
  const started = performance.now();
  const app = await NestFactory.create(ScaleAppModule, { logger: NEST_LOG_LEVELS });
  app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
  await app.init();
  await app.startAllMicroservices();
  apps.set(id, app);
  return performance.now() - started;
}

function windowStats() {
  const sorted = Float64Array.from(latencies).sort();
  const stats = {
    received: sorted.length,
    maxLatencyMs: sorted.length ? sorted[sorted.length - 1] : null,
    p99LatencyMs: sorted.length
      ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]
      : null,
    runs,
    seqs,
    offsets,
  };
  latencies = [];
  runs = [];
  seqs = [];
  offsets = [];
  return stats;
}

process.on('message', async (command) => {
  try {
    if (command.type === 'add') {
      const bootMs = await addMember(command);
      process.send({ type: 'added', id: command.id, bootMs });
    } else if (command.type === 'window') {
      process.send({ type: 'window', ...windowStats() });
    } else if (command.type === 'close') {
      const started = performance.now();
      const ids = command.ids ?? [...apps.keys()];
      await Promise.all(
        ids.map(async (id) => {
          await apps.get(id)?.close();
          apps.delete(id);
        }),
      );
      process.send({ type: 'closed', ids, ms: performance.now() - started });
    }
  } catch (error) {
    process.send({ type: 'error', command: command.type, error: error?.stack ?? String(error) });
  }
});
process.send({ type: 'up' });
