/**
 * Shutdown with the broker unreachable: the built example service, pointed at a port where nothing listens, is
 * closed right after it started, while its producer, consumers and admin client are still retrying to connect.
 * The close must end promptly (not wait out `shutdownTimeoutMs`), and the process must end by itself afterwards:
 * kafkajs's connect retries (the client's budget, about a minute) must not keep it alive nor log after the close.
 *
 * A handler that never returns (it ignores ctx.signal), in a child process (test/support/hung-handler-app.mjs): the
 * stop waits `shutdownTimeoutMs` for it, then commits what was handled before it, leaves the group, disconnects and
 * says which handler and record it abandoned; the process then ends by itself (app.close()) or by the signal Nest
 * re-raises (SIGTERM), and the next owner gets the abandoned record and those after it.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { Injectable, Module, type OnModuleInit } from '@nestjs/common';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaGroupsServer } from 'nest-kafka-groups';
import { uniqueName, waitFor } from 'nest-kafka-groups/testing';
import type { KafkaTracingHooks } from 'nest-kafka-groups/tracing';
import { startTestApp } from './support/nest-test-app.js';
import { recording, recordingFeature, recordingSuite } from './support/recording-feature.js';
import { ServiceProcess } from './support/service-process.js';

/** Nothing listens on port 1 (privileged, never bound here): every connection is refused at once. */
const CLOSED_BROKER = '127.0.0.1:1';
/** Far above what the close needs, so that only the defect (waiting out the whole budget) reaches it. */
const SHUTDOWN_TIMEOUT_MS = 20_000;
/**
 * Well below the budget above and the client's connect retries (8 retries, about 68 s with the defaults), and far
 * above what the close and the exit take on a loaded host.
 */
const PROMPT_MS = 12_000;

const ENV = {
  KAFKA_BROKERS: CLOSED_BROKER,
  KAFKA_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  FEED_ENABLED: 'false',
  NO_COLOR: '1',
};

/** Lines that must not appear: an ERROR, an unhandled rejection, a part of the shutdown abandoned at the deadline. */
function problems(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => /\bERROR\b|UNHANDLED|abandoned|Shutdown timed out|Not connected yet/.test(line));
}

describe('shutdown with the broker unreachable', () => {
  test('app.close() returns promptly and the process then exits by itself, nothing logged after the close', async () => {
    const child = spawn(process.execPath, ['test/support/close-app.mjs'], {
      env: { ...process.env, ...ENV, CLOSE_AFTER_MS: '1000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let closedAt: number | undefined;
    let afterClose = '';
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      if (closedAt !== undefined) afterClose += text;
      if (closedAt === undefined && /^CLOSED \d+$/m.test(output)) closedAt = Date.now();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    // The defect kept the process for the client's whole connect retry budget: cut it off well before that ends.
    const killer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    const exit = await exited;
    clearTimeout(killer);
    const exitedAt = Date.now();

    expect(output).toContain('STARTED');
    const closeMs = Number(/^CLOSED (\d+)$/m.exec(output)?.[1]);
    expect({ closeMs, problems: problems(output) }).toEqual({ closeMs: expect.any(Number), problems: [] });
    expect(closeMs).toBeLessThan(PROMPT_MS);
    expect(exit).toEqual({ code: 0, signal: null });
    // Nothing was left running: the event loop emptied right after the close.
    expect(exitedAt - closedAt!).toBeLessThan(PROMPT_MS);
    expect(afterClose.trim()).toBe('');
    console.log(
      `broker down: app.close() ${closeMs} ms, the process ended ${exitedAt - closedAt!} ms after it`,
    );
  });

  test('node dist/main.js exits promptly after SIGTERM, by the signal Nest re-raises', async () => {
    const service = new ServiceProcess({ ...ENV, LOG_LEVEL: 'log' });
    await service.waitUntilListening();
    // Every client has met the refused connection and is in its retry backoff.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const started = Date.now();
    const exit = await service.stop('SIGTERM', 45_000);
    const tookMs = Date.now() - started;
    expect({ exit, problems: problems(service.log) }).toEqual({
      exit: { code: null, signal: 'SIGTERM' },
      problems: [],
    });
    expect(tookMs).toBeLessThan(PROMPT_MS);
    console.log(`broker down: SIGTERM to exit ${tookMs} ms`);
  });
});

/** How long the broker's answer to a dead-letter or retry write is held back: well over the batch's 250 ms wait. */
const SLOW_ACK_MS = 1_500;

/**
 * Holds back the completion of every dead-letter and retry-topic write by SLOW_ACK_MS after the broker acknowledged
 * it, through the republish hook tracing uses: the record is in the topic at once, the member learns it late, as
 * with a slow broker. Set before the groups start (module init runs before `listen`).
 */
@Injectable()
class SlowRepublishAcks implements OnModuleInit {
  static writes = 0;
  /** When set, the completions wait for it instead of SLOW_ACK_MS. */
  static held?: Promise<void>;
  constructor(private readonly server: KafkaGroupsServer) {}
  onModuleInit(): void {
    const hooks: KafkaTracingHooks = {
      traceHandler: (invoke) => invoke,
      traceSend: (_topic, _messages, send) => send(),
      traceRepublish: async (_kind, _source, _topic, _record, send) => {
        await send();
        SlowRepublishAcks.writes++;
        await (SlowRepublishAcks.held ?? sleep(SLOW_ACK_MS));
      },
    };
    this.server.useTracing(hooks);
  }
}

@Module({ providers: [SlowRepublishAcks] })
class SlowRepublishAcksModule {}

describe('a dead-letter write in flight at a graceful stop', () => {
  const { kafka, apps } = recordingSuite();

  async function deadLetters(topic: string): Promise<number> {
    const offsets = await (await kafka.admin()).fetchTopicOffsets(`${topic}-dlt`);
    return offsets.reduce((sum, p) => sum + Number(p.high), 0);
  }

  test('app.close() waits for it and commits its offset: the next owner does not dead-letter the record again', async () => {
    const topic = uniqueName('stop-dlt');
    const groupId = uniqueName('stop-dlt');
    await kafka.createTopic(topic, 1);
    await kafka.createTopic(`${topic}-dlt`, 1);
    SlowRepublishAcks.writes = 0;
    SlowRepublishAcks.held = undefined;
    recording.behaviour = (payload) => {
      if (payload.seq === 0) throw new Error('fails for good');
    };
    const root = { retry: { attempts: 1 } };
    const first = await startTestApp([recordingFeature(groupId, topic)], root, [SlowRepublishAcksModule]);
    apps.push(first.app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 2, () => 'k');
    // The dead letter is in its topic; its write has not completed for the member yet.
    await waitFor('the dead-letter record in its topic', 10_000, () => SlowRepublishAcks.writes === 1);
    apps.splice(apps.indexOf(first.app), 1);
    const began = Date.now();
    await first.app.close();
    const closeMs = Date.now() - began;

    // The record after it was not reached by the first owner (its partition paused for the write).
    const second = await startTestApp([recordingFeature(groupId, topic)], root);
    apps.push(second.app);
    await kafka.waitForCommittedToEnd(groupId, topic);
    await sleep(500);
    expect(recording.deliveries.map((d) => d.seq)).toEqual([0, 1]);
    expect(await deadLetters(topic)).toBe(1);
    expect(closeMs).toBeLessThan(SLOW_ACK_MS + 5_000);
    console.log(`dead-letter write in flight at app.close(): close ${closeMs} ms`);
  });

  test('a rebalance waits for it before rejoining and commits its offset: the partition that moves is not dead-lettered again', async () => {
    const topic = uniqueName('revoke-dlt');
    const groupId = uniqueName('revoke-dlt');
    await kafka.createTopic(topic, 2);
    await kafka.createTopic(`${topic}-dlt`, 2);
    SlowRepublishAcks.writes = 0;
    let release!: () => void;
    SlowRepublishAcks.held = new Promise<void>((resolve) => (release = resolve));
    recording.behaviour = () => {
      throw new Error('fails for good');
    };
    const root = { retry: { attempts: 1 } };
    const first = await startTestApp([recordingFeature(groupId, topic)], root, [SlowRepublishAcksModule]);
    apps.push(first.app);
    await kafka.waitForStableGroup(groupId, 1);
    // One failing record on each partition: whichever the second member gets, its record's write is in flight.
    await kafka.produce(
      topic,
      [0, 1].map((seq) => ({ key: `k${seq}`, value: JSON.stringify({ seq }), partition: seq })),
    );
    await waitFor('both dead-letter records in their topic', 10_000, () => SlowRepublishAcks.writes === 2);

    // A second member joins: the first one's next heartbeat sees the rebalance, and one partition moves.
    const second = await startTestApp([recordingFeature(groupId, topic)], root);
    apps.push(second.app);
    const admin = await kafka.admin();
    await waitFor('the group to rebalance', 20_000, async () => {
      const [group] = (await admin.describeGroups([groupId])).groups;
      return group.state === 'PreparingRebalance' || group.state === 'CompletingRebalance';
    });
    await sleep(500);
    release();
    await kafka.waitForStableGroup(groupId, 2);
    await kafka.waitForCommittedToEnd(groupId, topic);
    await sleep(500);
    expect(recording.deliveries.map((d) => d.seq).sort()).toEqual([0, 1]);
    expect(await deadLetters(topic)).toBe(2);
  });
});

/** The hung handler's stop waits this long: short, so each test takes seconds, and well above a drain's needs. */
const HUNG_SHUTDOWN_MS = 2_000;
/** Past the budget: the commit, the LeaveGroup and the disconnect, on a loaded host. */
const LEAVE_MS = 5_000;

/** test/support/hung-handler-app.mjs as a child process, its output kept and watched. */
class HungHandlerApp {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly child;
  private readonly watchers: { pattern: RegExp; resolve: (at: number) => void }[] = [];

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ['test/support/hung-handler-app.mjs'], {
      env: { ...process.env, NO_COLOR: '1', SHUTDOWN_TIMEOUT_MS: String(HUNG_SHUTDOWN_MS), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      for (const watcher of [...this.watchers])
        if (watcher.pattern.test(this.output)) {
          this.watchers.splice(this.watchers.indexOf(watcher), 1);
          watcher.resolve(Date.now());
        }
    };
    this.child.stdout.on('data', collect);
    this.child.stderr.on('data', collect);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** Resolves with the time the output first matched `pattern`; fails after `timeoutMs`, showing the output. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<number> {
    if (pattern.test(this.output)) return Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        new Promise<number>((resolve) => this.watchers.push({ pattern, resolve })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${this.output}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends a child the test gave up on. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

describe('a handler that never returns at a graceful stop', () => {
  const { kafka, apps } = recordingSuite();
  const children: HungHandlerApp[] = [];
  afterEach(() => {
    while (children.length > 0) children.pop()!.kill();
  });

  /**
   * A one-partition topic with seqs 0..4 and a group whose member (the child) hangs on seq 2. Returns the child once
   * the hang began.
   */
  async function hungChild(prefix: string, env: Record<string, string>) {
    const topic = uniqueName(prefix);
    const groupId = uniqueName(prefix);
    await kafka.createTopic(topic, 1);
    const child = new HungHandlerApp({ TOPIC: topic, GROUP_ID: groupId, HANG_SEQ: '2', ...env });
    children.push(child);
    await child.waitFor(/^STARTED$/m, 60_000);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 5, () => 'k');
    await child.waitFor(/^HUNG$/m, 30_000);
    return { child, topic, groupId };
  }

  /** What the stop left behind in the broker, read right after the process ended. */
  async function leftBehind(groupId: string, topic: string) {
    const [group] = (await (await kafka.admin()).describeGroups([groupId])).groups;
    const [offsets] = await kafka.offsets(groupId, topic);
    return { members: group.members.length, committed: offsets.committed };
  }

  /** The next owner gets the hung record and the ones after it, none before (they were committed). */
  async function nextOwnerGets(groupId: string, topic: string): Promise<number[]> {
    const next = await startTestApp([recordingFeature(groupId, topic)]);
    apps.push(next.app);
    await kafka.waitForCommittedToEnd(groupId, topic);
    return recording.deliveries.map((d) => d.seq);
  }

  function abandonedLines(output: string): string[] {
    return output.split('\n').filter((line) => /Shutdown timed out/.test(line));
  }

  test('app.close() gives up after shutdownTimeoutMs, commits, leaves the group, and the process then exits by itself', async () => {
    const { child, topic, groupId } = await hungChild('hung-close', { STOP: 'close' });
    const closedAt = await child.waitFor(/^CLOSED \d+$/m, HUNG_SHUTDOWN_MS + LEAVE_MS + 10_000);
    const closeMs = Number(/^CLOSED (\d+)$/m.exec(child.output)![1]);
    // Read before the process ends: the broker must already have what the stop left.
    const left = await leftBehind(groupId, topic);
    const killer = setTimeout(() => child.kill(), 20_000);
    const exit = await child.exited;
    clearTimeout(killer);
    const exitMs = Date.now() - closedAt;
    const resources = /^RESOURCES (.*)$/m.exec(child.output)?.[1];

    expect({ exit, left, abandoned: abandonedLines(child.output).length }).toEqual({
      exit: { code: 0, signal: null },
      left: { members: 0, committed: 2 },
      abandoned: 1,
    });
    expect(abandonedLines(child.output)[0]).toMatch(
      new RegExp(
        `WARN.*Shutdown timed out after ${HUNG_SHUTDOWN_MS} ms \\(shutdownTimeoutMs\\) in group ${groupId} with 1 ` +
          `handler\\(s\\) still running, abandoned: HangingController.handle on ${topic}\\[0\\]@2`,
      ),
    );
    // The producers and the admin client closed too, though the budget was spent: none abandoned.
    expect(child.output).not.toMatch(/\bERROR\b|UNHANDLED|ran out; abandoned/);
    expect(closeMs).toBeGreaterThanOrEqual(HUNG_SHUTDOWN_MS);
    expect(closeMs).toBeLessThan(HUNG_SHUTDOWN_MS + LEAVE_MS);
    expect(exitMs).toBeLessThan(5_000);
    expect(await nextOwnerGets(groupId, topic)).toEqual([2, 3, 4]);
    console.log(
      `hung handler, app.close(): close ${closeMs} ms (shutdownTimeoutMs ${HUNG_SHUTDOWN_MS}), exit ${exitMs} ms ` +
        `after it; left after the close: ${resources}`,
    );
  });

  test('SIGTERM, and a second one while it waits (enableShutdownHooks): the process ends after shutdownTimeoutMs, committed and out of the group', async () => {
    const { child, topic, groupId } = await hungChild('hung-sigterm', { STOP: 'signal' });
    const started = Date.now();
    child.child.kill('SIGTERM');
    // A second SIGTERM while the first stop waits for the handler (an impatient orchestrator): one stop, no more.
    await child.waitFor(/Stopping: draining 1 in-flight/, 10_000);
    child.child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill(), HUNG_SHUTDOWN_MS + LEAVE_MS + 20_000);
    const exit = await child.exited;
    clearTimeout(killer);
    const tookMs = Date.now() - started;
    const left = await leftBehind(groupId, topic);

    expect({
      exit,
      left,
      abandoned: abandonedLines(child.output).length,
      stops: child.output.match(/Stopping: draining/g)?.length,
    }).toEqual({
      exit: { code: null, signal: 'SIGTERM' },
      left: { members: 0, committed: 2 },
      abandoned: 1,
      stops: 1,
    });
    expect(child.output).not.toMatch(/\bERROR\b|UNHANDLED/);
    expect(tookMs).toBeGreaterThanOrEqual(HUNG_SHUTDOWN_MS);
    expect(tookMs).toBeLessThan(HUNG_SHUTDOWN_MS + LEAVE_MS);
    expect(await nextOwnerGets(groupId, topic)).toEqual([2, 3, 4]);
    console.log(`hung handler, SIGTERM to exit ${tookMs} ms (shutdownTimeoutMs ${HUNG_SHUTDOWN_MS})`);
  });

  test('a batch handler that never returns: the same stop, its whole call redelivered', async () => {
    const { child, topic, groupId } = await hungChild('hung-batch', { STOP: 'close', BATCH: '1' });
    await child.waitFor(/^CLOSED \d+$/m, HUNG_SHUTDOWN_MS + LEAVE_MS + 10_000);
    const left = await leftBehind(groupId, topic);
    const killer = setTimeout(() => child.kill(), 20_000);
    const exit = await child.exited;
    clearTimeout(killer);
    const firstCall = /^HANDLING BATCH ([\d,]+) 0@(\d+)$/m.exec(child.output)!;

    // The records were produced in one send: the call that hung holds all of them, nothing is committed.
    expect({ exit, left, firstCall: firstCall[1] }).toEqual({
      exit: { code: 0, signal: null },
      left: { members: 0, committed: -1 },
      firstCall: '0,1,2,3,4',
    });
    expect(abandonedLines(child.output)).toEqual([
      expect.stringMatching(new RegExp(`abandoned: HangingController.handle on ${topic}\\[0\\]@0`)),
    ]);
    expect(await nextOwnerGets(groupId, topic)).toEqual([0, 1, 2, 3, 4]);
  });

  test('a message waiting out its retry backoff does not hold the stop up: app.close() returns at once, the message is redelivered', async () => {
    const topic = uniqueName('stop-backoff');
    const groupId = uniqueName('stop-backoff');
    await kafka.createTopic(topic, 1);
    // Fails the first delivery only: the next owner counts attempts afresh.
    recording.behaviour = () => {
      if (recording.deliveries.length === 1) throw new Error('fails once');
    };
    // A backoff far longer than the budget: a stop that waited for it would run into shutdownTimeoutMs.
    const first = await startTestApp([recordingFeature(groupId, topic)], {
      shutdownTimeoutMs: 10_000,
      retry: { attempts: 3, initialDelayMs: 60_000 },
    });
    apps.push(first.app);
    await kafka.waitForStableGroup(groupId, 1);
    await kafka.produceKeyed(topic, 2, () => 'k');
    await waitFor('the first attempt', 10_000, () => recording.deliveries.length === 1);
    await waitFor('the partition paused for the backoff', 10_000, () =>
      first.server.groups.some((g) => g.members.some((m) => m.pausedPartitions().length > 0)),
    );
    apps.splice(apps.indexOf(first.app), 1);
    const began = Date.now();
    await first.app.close();
    const closeMs = Date.now() - began;
    const left = await leftBehind(groupId, topic);

    expect(left).toEqual({ members: 0, committed: -1 });
    expect(closeMs).toBeLessThan(3_000);
    expect(await nextOwnerGets(groupId, topic)).toEqual([0, 0, 1]);
    console.log(`retry backoff of 60 s in progress at app.close(): close ${closeMs} ms`);
  });
});
