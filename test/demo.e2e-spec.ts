/**
 * `npm run demo` (scripts/demo.mjs) for a few seconds: it prints a table per consumer group, both groups consume
 * the simulated feed, and on SIGINT it stops what it started and exits 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, describe, expect, test } from '@jest/globals';
import { isBrokerReachable } from '../scripts/kafka-local-lib.mjs';
import { testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { expectPortsFree, freePort, javaAvailable } from './support/local-machine.js';

interface GroupRow {
  group: string;
  state: string;
  members: string;
  partitions: string;
  processed: number;
  failed: number;
  lag: string;
}

/** The rows of every table the demo printed, in order; `final` marks the last one, printed on shutdown. */
function tables(output: string): { title: string; rows: GroupRow[] }[] {
  const lines = output.split('\n');
  const result: { title: string; rows: GroupRow[] }[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i].startsWith('GROUP ')) continue;
    const header = lines[i].trim().split(/\s+/);
    const column = (name: string) => header.indexOf(name);
    const rows: GroupRow[] = [];
    for (let j = i + 1; j < lines.length; j++) {
      const cells = lines[j].trim().split(/\s+/);
      if (cells.length !== header.length) break;
      rows.push({
        group: cells[column('GROUP')],
        state: cells[column('STATE')],
        members: cells[column('MEMBERS')],
        partitions: cells[column('PARTITIONS')],
        processed: Number(cells[column('PROCESSED')]),
        failed: Number(cells[column('FAILED')]),
        lag: cells[column('LAG')],
      });
    }
    result.push({ title: lines[i - 1].trim(), rows });
  }
  return result;
}

class Demo {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, ['scripts/demo.mjs'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits for a table in which every one of `groups` processed messages. */
  async waitForConsumption(groups: string[], timeoutMs: number): Promise<void> {
    await waitFor(
      `the demo's table to show ${groups.join(' and ')} processing`,
      timeoutMs,
      () => {
        if (!this.running) throw new Error(`the demo exited early:\n${this.output}`);
        const last = tables(this.output).at(-1);
        return groups.every((g) => (last?.rows.find((r) => r.group === g)?.processed ?? 0) > 0);
      },
      250,
    );
  }

  async interrupt(timeoutMs = 60_000) {
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** Topics and groups of the demo's own, so it neither reads nor disturbs other specs' or a developer's data. */
function demoEnv(port: number, extra: NodeJS.ProcessEnv = {}) {
  const names = {
    AIRNAV_TOPIC: uniqueName('demo-airnav'),
    FLIGHT24_TOPIC: uniqueName('demo-flight24'),
    AIRNAV_GROUP_ID: uniqueName('demo-airnav-group'),
    FLIGHT24_GROUP_ID: uniqueName('demo-flight24-group'),
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...names,
    PORT: String(port),
    FEED_RATE_PER_SEC: '20',
    DEMO_INTERVAL_MS: '1000',
    ...extra,
  };
  // Jest sets NODE_ENV=test, which changes kafkajs's retry defaults: run the service as a user would.
  delete env.NODE_ENV;
  return { env, names };
}

describe('npm run demo', () => {
  let demo: Demo | undefined;

  afterEach(() => {
    demo?.kill();
    demo = undefined;
  });

  test('with a broker already running: both groups consume the feed; SIGINT stops the service and exits 0', async () => {
    const { env, names } = demoEnv(await freePort(), { KAFKA_BROKERS: testBrokers().join(',') });
    demo = new Demo(env);
    // The first run may build the service (dist/ missing or older than src/).
    await demo.waitForConsumption([names.AIRNAV_GROUP_ID, names.FLIGHT24_GROUP_ID], 180_000);
    // A few more seconds of live tables.
    await new Promise((resolve) => setTimeout(resolve, 3_000));

    const { code, signal } = await demo.interrupt();
    expect({ code, signal, output: code === 0 ? '' : demo.output }).toEqual({
      code: 0,
      signal: null,
      output: '',
    });

    expect(demo.output).toContain(`reusing the broker at ${testBrokers().join(',')}`);
    const all = tables(demo.output);
    expect(all.length).toBeGreaterThanOrEqual(3);
    const final = all.at(-1)!;
    expect(final.title).toMatch(/^final/);
    for (const group of [names.AIRNAV_GROUP_ID, names.FLIGHT24_GROUP_ID]) {
      const row = final.rows.find((r) => r.group === group);
      expect(row).toMatchObject({ group, failed: 0, members: '1/1', partitions: '0,1,2' });
      expect(row!.processed).toBeGreaterThan(0);
    }
    expect(demo.output).toMatch(/aircraft seen: airnav \d+, flight24 \d+/);
    expect(demo.output).toContain('[demo] service stopped');
    expect(demo.output).not.toContain('broker stopped');
    // The reused broker still runs.
    expect(await isBrokerReachable(testBrokers())).toBe(true);
  }, 240_000);

  const withJava = javaAvailable() ? test : test.skip;
  withJava(
    'with no broker reachable: it starts one through the launcher and stops it on SIGINT',
    async () => {
      // Fixed ports, like every broker a spec starts: a parallel checkout chooses its own, a failure names them.
      const kafkaPort = Number(process.env.KAFKA_DEMO_PORT ?? 19592);
      const controllerPort = kafkaPort + 1;
      await expectPortsFree([kafkaPort, controllerPort], 'KAFKA_DEMO_PORT');
      const { env, names } = demoEnv(await freePort(), {
        KAFKA_PORT: String(kafkaPort),
        KAFKA_CONTROLLER_PORT: String(controllerPort),
        KAFKA_NODES: '1',
      });
      delete env.KAFKA_BROKERS;
      demo = new Demo(env);
      await demo.waitForConsumption([names.AIRNAV_GROUP_ID, names.FLIGHT24_GROUP_ID], 180_000);

      const { code } = await demo.interrupt();
      expect({ code, output: code === 0 ? '' : demo.output }).toEqual({ code: 0, output: '' });
      expect(demo.output).toContain(`started a local broker at 127.0.0.1:${kafkaPort}`);
      expect(demo.output).toMatch(/\[demo\] broker stopped \(pid \d+\)/);
      expect(await isBrokerReachable(`127.0.0.1:${kafkaPort}`)).toBe(false);
      const final = tables(demo.output).at(-1)!;
      expect(final.rows.map((r) => r.processed > 0)).toEqual([true, true]);
    },
    240_000,
  );
});
