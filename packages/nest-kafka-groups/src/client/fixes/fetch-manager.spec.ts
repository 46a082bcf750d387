import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';
import { fetcherChanges } from './fetch-manager.js';

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
