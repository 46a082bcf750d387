import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';
import { createWorkerQueue, fetcherChanges } from './fetch-manager.js';

/**
 * kafkajs's fetch manager (the library's instance, fixed, and the installed module as released) with its real
 * fetchers, worker queue and workers, fed by an in-memory fetch per broker: what the other brokers' fetchers do when
 * one broker leaves the cluster's broker list while a batch of another is still being handled. Time is a fake clock
 * the spec moves (the fetch manager has no timer of its own; a fetch answers after 5 ms of it), so how many fetches
 * a span allows does not depend on how busy the machine is.
 */
const Released = createRequire(import.meta.url)('kafkajs/src/consumer/fetchManager.js');
const Fixed = kafkajsInternal('src/consumer/fetchManager.js');

const quietLogger = {
  namespace: () => quietLogger,
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** A wait on the fake clock. */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Moves the clock by `ms`, letting everything that was waiting for it run. */
const elapse = (ms: number) => jest.advanceTimersByTimeAsync(ms);

/** Moves the clock 5 ms at a time until `condition` holds; fails after 5 s of it. */
async function until(what: string, condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited >= 5_000) throw new Error(`no ${what} after 5 s`);
    await elapse(5);
  }
}

/** `promise`, awaited while the clock moves (a fetch under way ends only then). */
async function settled<T>(what: string, promise: Promise<T>): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => (done = true));
  tracked.catch(() => undefined);
  await until(what, () => done);
  return tracked;
}

/**
 * Brokers 1, 2 and 3, each leading one partition (its number). Broker 1's first fetch returns a batch whose
 * handling is held until `release()`; every other fetch waits 5 ms and returns nothing.
 */
function cluster(createFetchManager: any) {
  let nodeIds = ['1', '2', '3'];
  const fetches: Record<string, number> = {};
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let holding = false;
  let failure: Error | undefined;
  const manager = createFetchManager({
    logger: quietLogger,
    getNodeIds: () => nodeIds,
    fetch: async (nodeId: string) => {
      fetches[nodeId] = (fetches[nodeId] ?? 0) + 1;
      await sleep(5);
      if (failure !== undefined && nodeId === '2') throw failure;
      return nodeId === '1' && fetches[nodeId] === 1 ? [{ topic: 't', partition: 1 }] : [];
    },
    handler: async (batch: { partition: number }) => {
      if (batch.partition !== 1) return;
      holding = true;
      await held;
      holding = false;
    },
    concurrency: 2,
  });
  const started = manager.start() as Promise<void>;
  return {
    manager,
    started,
    fetches: (nodeId: string) => fetches[nodeId] ?? 0,
    holding: () => holding,
    list: (ids: string[]) => (nodeIds = ids),
    failWith: (error: Error) => (failure = error),
    release,
  };
}

describe('fetcherChanges', () => {
  it('starts a fetcher for a broker that appeared and retires the one of a broker that left', () => {
    expect(fetcherChanges(['1', '2', '3'], [], ['1', '2'])).toEqual({ start: [], retire: ['3'] });
    expect(fetcherChanges(['1', '2'], [], ['1', '2', '4'])).toEqual({ start: ['4'], retire: [] });
    expect(fetcherChanges(['1', '2'], [], ['2', '1'])).toEqual({ start: [], retire: [] });
  });

  it('retires a fetcher once, and starts a listed broker again only after its old fetcher ended', () => {
    expect(fetcherChanges(['1', '3'], ['3'], ['1'])).toEqual({ start: [], retire: [] });
    expect(fetcherChanges(['1', '3'], ['3'], ['1', '3'])).toEqual({ start: [], retire: [] });
    expect(fetcherChanges(['1'], [], ['1', '3'])).toEqual({ start: ['3'], retire: [] });
  });

  it('an empty broker list changes nothing (no metadata yet), as released', () => {
    expect(fetcherChanges(['1', '2'], [], [])).toEqual({ start: [], retire: [] });
  });
});

describe('kafkajs fetch manager: a broker leaves the broker list (the fix in place of src/consumer/fetchManager)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('released: every fetcher stops and waits for the batch another broker is handling', async () => {
    const c = cluster(Released);
    await until('the held batch', c.holding);
    c.list(['1', '2']);
    await elapse(50);
    const fetched = c.fetches('2');
    await elapse(200);
    // Broker 2's fetcher threw KafkaJSFetcherRebalanceError and waits with the others for broker 1's batch.
    expect(c.fetches('2')).toBe(fetched);
    c.release();
    await until('broker 2 fetched again', () => c.fetches('2') > fetched);
    await settled('stop()', c.manager.stop());
    await settled('start()', c.started);
  });

  it("fixed: the broker's fetcher ends, the others go on while the batch is handled", async () => {
    const c = cluster(Fixed);
    await until('the held batch', c.holding);
    c.list(['1', '2']);
    await elapse(50);
    const fetched = { 2: c.fetches('2'), 3: c.fetches('3') };
    await elapse(200);
    expect(c.fetches('2')).toBeGreaterThan(fetched[2] + 5);
    expect(c.fetches('3')).toBe(fetched[3]);
    expect(c.holding()).toBe(true);
    expect(c.manager.getFetchers()).toHaveLength(2);

    // Listed again (the next metadata still names it): a fetcher of its own, the others untouched.
    c.list(['1', '2', '3']);
    await until('broker 3 fetched again', () => c.fetches('3') > fetched[3]);
    expect(c.holding()).toBe(true);
    c.release();
    await settled('stop()', c.manager.stop());
    await settled('start()', c.started);
    expect(c.manager.getFetchers()).toHaveLength(0);
  });

  it('fixed: an error no fetcher recovered from still stops them all and is thrown from start(), as released', async () => {
    const c = cluster(Fixed);
    await until('the held batch', c.holding);
    const error = new Error('not a broker error');
    c.failWith(error);
    await elapse(50);
    const fetched = c.fetches('3');
    await elapse(100);
    expect(c.fetches('3')).toBe(fetched);
    c.release();
    await expect(settled('start()', c.started)).rejects.toBe(error);
  });

  it('fixed: start() with no broker listed throws KafkaJSNoBrokerAvailableError, as released', async () => {
    const manager = Fixed({
      logger: quietLogger,
      getNodeIds: () => [],
      fetch: async () => [],
      handler: async () => {},
    });
    await expect(manager.start()).rejects.toMatchObject({ name: 'KafkaJSNoBrokerAvailableError' });
  });
});

/**
 * The worker queue in place of kafkajs's (consumer/workerQueue.js with its workers, worker.js), against the released
 * one built from the installed modules: the same handler calls, in the same order and concurrency, and each push
 * settling the same way. Each batch's handling ends when the spec ends it.
 */
describe("worker queue: the fetch manager's own against kafkajs 2.2.4's", () => {
  const require = createRequire(import.meta.url);
  const createReleasedWorker = require('kafkajs/src/consumer/worker.js');
  const createReleasedWorkerQueue = require('kafkajs/src/consumer/workerQueue.js');

  type Queue = { push: (...batches: unknown[]) => Promise<void> };

  /** A queue of `concurrency` workers whose handler records each start and waits for `end(batch)`. */
  function harness(kind: 'released' | 'fixed', concurrency: number) {
    const log: string[] = [];
    const running = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
    const handler = (batch: unknown, { workerId }: { workerId: number }) =>
      new Promise<void>((resolve, reject) => {
        log.push(`start ${String(batch)} on ${workerId}`);
        running.set(String(batch), { resolve, reject });
      });
    const queue: Queue =
      kind === 'released'
        ? createReleasedWorkerQueue({
            workers: Array.from({ length: concurrency }, (_, workerId) =>
              createReleasedWorker({ handler, workerId }),
            ),
          })
        : createWorkerQueue(handler, concurrency);
    const outcome = (push: Promise<void>) => {
      const seen = { value: 'pending' };
      push.then(
        () => (seen.value = 'resolved'),
        (error: Error) => (seen.value = `rejected: ${error.message}`),
      );
      return seen;
    };
    const tick = async () => {
      for (let i = 0; i < 20; i++) await Promise.resolve();
    };
    const end = async (batch: string, error?: string) => {
      const handling = running.get(batch)!;
      running.delete(batch);
      if (error) handling.reject(new Error(error));
      else handling.resolve();
      await tick();
    };
    return { log, queue, outcome, end, tick };
  }

  async function scenario(kind: 'released' | 'fixed') {
    const h = harness(kind, 2);
    const first = h.outcome(h.queue.push('a', 'b', 'c'));
    const second = h.outcome(h.queue.push('d'));
    await h.tick();
    const steps: unknown[] = [[...h.log], first.value, second.value];
    await h.end('b', 'b failed');
    steps.push([...h.log], first.value, second.value);
    await h.end('a', 'a failed');
    steps.push([...h.log], first.value, second.value);
    await h.end('c');
    steps.push([...h.log], first.value, second.value);
    await h.end('d');
    steps.push([...h.log], first.value, second.value);
    const empty = h.outcome(h.queue.push());
    await h.tick();
    steps.push(empty.value);
    const later = h.outcome(h.queue.push('e', 'f', 'g'));
    await h.tick();
    steps.push([...h.log]);
    await h.end('e');
    await h.end('f');
    await h.end('g');
    steps.push([...h.log], later.value);
    return steps;
  }

  it('runs the same batches on the same workers in the same order, and settles each push the same way', async () => {
    const released = await scenario('released');
    const fixed = await scenario('fixed');
    expect(fixed).toEqual(released);
    // What the scenario shows: two workers at a time; a push waits for all its batches and fails with the first
    // of them (in push order) that failed; an empty push resolves.
    expect(fixed[fixed.length - 1]).toBe('resolved');
    expect(released[10]).toBe('rejected: a failed');
  });

  it('starts only idle workers: a batch pushed while every worker is busy waits for the first to end', async () => {
    for (const kind of ['released', 'fixed'] as const) {
      const h = harness(kind, 1);
      const one = h.outcome(h.queue.push('a'));
      const two = h.outcome(h.queue.push('b'));
      await h.tick();
      expect(h.log).toEqual(['start a on 0']);
      await h.end('a');
      expect(h.log).toEqual(['start a on 0', 'start b on 0']);
      expect([one.value, two.value]).toEqual(['resolved', 'pending']);
      await h.end('b');
      expect(two.value).toBe('resolved');
    }
  });
});
