import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { kafkajsInternal } from '../client/kafkajs.js';
import type { Kafka } from '../client/kafkajs.js';
import { DeadLetterWrite } from '../dead-letter/dead-letter-write.js';
import type { DeadLetterPublisher } from '../dead-letter/dead-letter-publisher.js';
import { resolveGroupSettings, resolveHandlerSettings } from '../kafka.options.js';
import { ConsumerMember } from './consumer-member.js';
import type { GroupRoute } from './group-route.js';

/**
 * One ConsumerMember on an in-memory kafkajs consumer, with kafkajs's Runner (the library's instance, fixed) built
 * for its `eachBatch` as kafkajs builds one per run and per restart of a crashed consumer, on in-memory consumer
 * groups: what the member does before a rejoin while a dead-letter write is out, and at a stop whose handler never
 * returns. Fake timers: the waits are exact.
 */
const Runner = kafkajsInternal('src/consumer/runner.js');
const TOPIC = 't';
const quietLogger = { namespace: () => quietLogger, debug() {}, info() {}, warn() {}, error() {} };

/** A kafkajs consumer group as the Runner sees it: what was resolved in it, and its joins (which may fail). */
function consumerGroup(name: string, resolved: string[]) {
  const group = {
    groupId: 'g',
    memberId: 'm1',
    generationId: 1 as number | null,
    rebalanceTimeout: 0,
    offsetManager: {},
    joinFailures: 0,
    resolveOffset({ partition, offset }: { partition: number; offset: string }) {
      resolved.push(`${name} ${TOPIC}[${partition}]@${offset}`);
    },
    async commitOffsets() {},
    async joinAndSync() {
      if (group.joinFailures > 0) {
        group.joinFailures--;
        throw new Error('join attempt failed');
      }
    },
  };
  return group;
}

async function member({
  rebalanceTimeout,
  sessionTimeout,
  invoke = () => Promise.resolve(new Error('fails for good')),
  disconnect = async () => {},
}: {
  rebalanceTimeout: number;
  sessionTimeout: number;
  /** The handler, for each message (resolves with its error, or undefined). */
  invoke?: GroupRoute['invoke'];
  /** The consumer's disconnect (kafkajs's waits for the batch running). */
  disconnect?: () => Promise<void>;
}) {
  type Listener = (event: { payload: any }) => void;
  const listeners = new Map<string, Set<Listener>>();
  const emit = (event: string, payload: object) => {
    for (const listener of [...(listeners.get(event) ?? [])]) listener({ payload });
  };
  let eachBatch!: (payload: any) => Promise<void>;
  let paused: { topic: string; partitions: number[] }[] = [];
  const consumer = {
    events: {
      GROUP_JOIN: 'join',
      REBALANCING: 'rebalancing',
      CRASH: 'crash',
      FETCH_START: 'fetch.start',
      FETCH: 'fetch',
    },
    /** As kafkajs's `consumer.on`: returns the listener's remover. */
    on(event: string, listener: Listener) {
      const set = listeners.get(event) ?? new Set();
      listeners.set(event, set.add(listener));
      return () => void set.delete(listener);
    },
    async connect() {},
    async subscribe() {},
    async run(options: { eachBatch: typeof eachBatch }) {
      eachBatch = options.eachBatch;
    },
    disconnect,
    pause() {},
    resume() {},
    paused: () => paused,
  };
  let acknowledge!: () => void;
  const acknowledged = new Promise<void>((resolve) => (acknowledge = resolve));
  const deadLetters = {
    start: (topic, source, settings, onChange) =>
      new DeadLetterWrite(() => acknowledged, topic, source, settings, onChange),
  } as Pick<DeadLetterPublisher, 'start'> as DeadLetterPublisher;
  const root = { brokers: ['127.0.0.1:1'] };
  const feature = { groupId: 'g', retry: { attempts: 1 }, consumer: { rebalanceTimeout, sessionTimeout } };
  const route: GroupRoute = {
    topic: TOPIC,
    handlerName: 'Handler.handle',
    settings: resolveHandlerSettings(root, feature, {}),
    deadLetterTopic: `${TOPIC}-dlt`,
    invoke,
  };
  const instance = new ConsumerMember({
    kafka: { consumer: () => consumer } as unknown as Kafka,
    group: resolveGroupSettings(root, feature),
    routes: new Map([[TOPIC, route]]),
    deadLetters,
    assigners: [],
    clientRetry: { retries: 0 },
    identity: { brokers: '127.0.0.1:1', mechanism: 'PLAINTEXT', principal: 'an anonymous client' },
    restartBackoff: { initialDelayMs: 1_000, maxDelayMs: 1_000 },
    index: 0,
    pausedTopics: new Set(),
  });
  await instance.start();

  const resolved: string[] = [];
  /** kafkajs's GROUP_JOIN after a join completed: partition 0 is still this member's. */
  const joined = () => emit('join', { memberId: 'm1', memberAssignment: { [TOPIC]: [0] } });
  /** What kafkajs does on `run()` and on each restart of a crashed consumer: a new group and Runner, joined. */
  const run = (name: string) => {
    const group = consumerGroup(name, resolved);
    new Runner({
      logger: quietLogger,
      consumerGroup: group,
      instrumentationEmitter: { emit() {} },
      concurrency: 1,
      eachBatch,
      onCrash() {},
      retry: { retries: 0 },
    });
    joined();
    return group;
  };
  /** A batch of one record at offset 5 that fails for good: its dead-letter write stays out (not acknowledged). */
  const failingBatch = async (group: ReturnType<typeof consumerGroup>) => {
    const handled = eachBatch({
      batch: {
        topic: TOPIC,
        partition: 0,
        messages: [{ offset: '5', key: null, value: Buffer.from('{}'), headers: {}, timestamp: '0' }],
      },
      resolveOffset: (offset: string) => group.resolveOffset({ partition: 0, offset }),
      heartbeat: async () => {},
      isRunning: () => true,
      pause: () => () => {},
    });
    await jest.advanceTimersByTimeAsync(300);
    await handled;
  };
  /** A batch of records at offsets 5 and 6, handed to the member; not awaited (its handler may never return). */
  const batchOfTwo = (group: ReturnType<typeof consumerGroup>) =>
    void eachBatch({
      batch: {
        topic: TOPIC,
        partition: 0,
        messages: ['5', '6'].map((offset) => ({
          offset,
          key: null,
          value: Buffer.from('{}'),
          headers: {},
          timestamp: '0',
        })),
      },
      resolveOffset: (offset: string) => group.resolveOffset({ partition: 0, offset }),
      heartbeat: async () => {},
      isRunning: () => true,
      pause: () => () => {},
    });
  return {
    instance,
    run,
    batchOfTwo,
    joined,
    failingBatch,
    resolved,
    acknowledge,
    crash: (error: Error, restart = true) => emit('crash', { error, restart }),
    /** One fetch of broker 1 as kafkajs's Runner tells it, with these partitions paused at its start. */
    fetch: (pausedAtStart: typeof paused) => {
      paused = pausedAtStart;
      emit('fetch.start', { nodeId: 1 });
      paused = [];
      emit('fetch', { nodeId: 1, numberOfBatches: 1, duration: 1 });
    },
    /** kafkajs's fetchers starting together, one per broker leading the member's partitions, none paused. */
    fetchesStart: (nodeIds: number[]) => {
      for (const nodeId of nodeIds) emit('fetch.start', { nodeId });
    },
    /** One broker's fetch answered (kafkajs tells no failed fetch: the consumer crashes). */
    fetchAnswered: (nodeId: number) => emit('fetch', { nodeId, numberOfBatches: 1, duration: 1 }),
    listenerCount: (event: string) => listeners.get(event)?.size ?? 0,
  };
}

// Every test: fake timers (the waits are exact) and quiet loggers.
beforeEach(() => {
  jest.useFakeTimers({ now: 0 });
  for (const level of ['log', 'warn', 'error', 'debug'] as const)
    jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
});
afterEach(() => {
  jest.useRealTimers();
  jest.restoreAllMocks();
});

describe('ConsumerMember before a rejoin, a dead-letter write out', () => {
  /** Resolves with the ms the wrapped joinAndSync took (its rejection, a failed join attempt, counts too). */
  async function timedJoin(group: { joinAndSync(): Promise<void> }): Promise<number> {
    const started = Date.now();
    let done = false;
    const join = group.joinAndSync().then(
      () => (done = true),
      () => (done = true),
    );
    while (!done) await jest.advanceTimersByTimeAsync(10);
    await join;
    return Date.now() - started;
  }

  it('waits half the rebalance timeout in all before one join, however often kafkajs tries to join', async () => {
    const { run, failingBatch } = await member({ rebalanceTimeout: 2_000, sessionTimeout: 10_000 });
    const group = run('first');
    await failingBatch(group);
    group.joinFailures = 2;
    const waits = [await timedJoin(group), await timedJoin(group), await timedJoin(group)];
    expect(waits[0]).toBeGreaterThanOrEqual(1_000);
    expect(waits.reduce((sum, ms) => sum + ms, 0)).toBeLessThanOrEqual(1_050);
  });

  it('waits at most half the session timeout: no heartbeat goes out while it waits, before the JoinGroup', async () => {
    const { run, failingBatch } = await member({ rebalanceTimeout: 60_000, sessionTimeout: 30_000 });
    const group = run('first');
    await failingBatch(group);
    const wait = await timedJoin(group);
    expect(wait).toBeGreaterThanOrEqual(15_000);
    expect(wait).toBeLessThanOrEqual(15_050);
  });

  it('after a join the next rejoin has its own bound', async () => {
    const { run, joined, failingBatch } = await member({ rebalanceTimeout: 2_000, sessionTimeout: 10_000 });
    const group = run('first');
    await failingBatch(group);
    expect(await timedJoin(group)).toBeGreaterThanOrEqual(1_000);
    joined();
    expect(await timedJoin(group)).toBeGreaterThanOrEqual(1_000);
  });

  it('a write done after kafkajs restarted the crashed consumer is resolved in the consumer group it runs now', async () => {
    const { run, failingBatch, resolved, acknowledge, crash } = await member({
      rebalanceTimeout: 2_000,
      sessionTimeout: 10_000,
    });
    await failingBatch(run('crashed'));
    crash(new Error('coordinator gone'));
    const restarted = run('restarted');
    acknowledge();
    await jest.advanceTimersByTimeAsync(0);
    await timedJoin(restarted);
    expect(resolved).toEqual([`restarted ${TOPIC}[0]@5`]);
  });
});

describe('ConsumerMember after a topic denial, joined again', () => {
  /** A member stopped by a topic READ denial, recreated after the recheck wait and joined again. */
  async function deniedThenJoined() {
    const fixture = await member({ rebalanceTimeout: 2_000, sessionTimeout: 10_000 });
    const denial = Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), {
      type: 'TOPIC_AUTHORIZATION_FAILED',
    });
    fixture.crash(denial, false);
    expect(fixture.instance.state).toBe('stopped');
    await jest.advanceTimersByTimeAsync(60_000);
    fixture.joined();
    expect(fixture.instance.deniedUntilFetch).toMatch(/not authorized to read topic/);
    return fixture;
  }

  it('a fetch that started with a partition paused (by a retry backoff as much as by the application) does not lift it', async () => {
    const { instance, fetch } = await deniedThenJoined();
    fetch([{ topic: 'other', partitions: [2] }]);
    expect(instance.deniedUntilFetch).toBeDefined();
    fetch([]);
    expect(instance.deniedUntilFetch).toBeUndefined();
  });

  it("is not lifted by one broker's fetch while another broker's fetch, which may be the refused one, has not answered", async () => {
    const { instance, fetchesStart, fetchAnswered } = await deniedThenJoined();
    fetchesStart([1, 2]);
    fetchAnswered(2);
    expect(instance.deniedUntilFetch).toBeDefined();
    // Broker 2 fetches on while broker 1 has not answered: still no proof for the partitions broker 1 leads.
    fetchesStart([2]);
    fetchAnswered(2);
    expect(instance.deniedUntilFetch).toBeDefined();
    fetchAnswered(1);
    expect(instance.deniedUntilFetch).toBeUndefined();
  });

  it('keeps one pair of fetch listeners however often the member joins again before a fetch lifts it', async () => {
    const { instance, joined, fetch, listenerCount } = await deniedThenJoined();
    for (let i = 0; i < 12; i++) joined();
    expect(listenerCount('fetch.start')).toBe(1);
    expect(listenerCount('fetch')).toBe(1);
    fetch([]);
    expect(instance.deniedUntilFetch).toBeUndefined();
    expect(listenerCount('fetch.start')).toBe(0);
    expect(listenerCount('fetch')).toBe(0);
  });
});

describe('ConsumerMember stopped with a handler that never returns', () => {
  it('abandons it at the deadline: resolves what its batch handled before it, names it, and no longer counts it in flight', async () => {
    const { instance, run, batchOfTwo, resolved } = await member({
      rebalanceTimeout: 2_000,
      sessionTimeout: 10_000,
      // Offset 5 succeeds; the handler never returns for offset 6.
      invoke: (_payload, ctx) =>
        (ctx as { offset: string }).offset === '5'
          ? Promise.resolve(undefined)
          : new Promise(() => undefined),
      // As kafkajs's: it waits for the batch running.
      disconnect: () => new Promise(() => undefined),
    });
    const group = run('first');
    batchOfTwo(group);
    await jest.advanceTimersByTimeAsync(0);
    expect(instance.inFlight).toBe(1);
    let stopped = false;
    void instance.stop(1_000).then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(1_000);
    expect(resolved).toEqual([`first ${TOPIC}[0]@5`]);
    expect(instance.inFlight).toBe(0);
    expect(Logger.prototype.warn).toHaveBeenCalledWith(
      expect.stringContaining(`1 handler(s) still running, abandoned: Handler.handle on ${TOPIC}[0]@6`),
    );
    // The disconnect never ends here: the leave's own bound ends the stop.
    await jest.advanceTimersByTimeAsync(3_000);
    expect(stopped).toBe(true);
  });
});
