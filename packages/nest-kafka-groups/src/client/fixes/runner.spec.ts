import { describe, expect, it, jest } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';
import { dateStandsStillInEachTest } from './standing-clock.spec-helper.js';
import {
  beforeRejoin,
  coordinatorProblem,
  isCoordinatorUnavailable,
  keepsFetchingAfterHeartbeat,
  resolveInCurrentGroup,
  sessionLapsed,
} from './runner.js';

/**
 * kafkajs's consumer Runner driven with an in-memory consumer group, on the library's instance (fixed) and on the
 * installed kafkajs module as released (upstream, kept to show the cause): when offsets are committed around a batch,
 * a heartbeat that reports a rebalance, a handler error, stop() and a crash. The clock (Date) stands still unless a
 * spec moves it, so the heartbeat, session and commit intervals it sets up hold however slowly the spec runs; timers
 * and the event loop stay real.
 */
dateStandsStillInEachTest();
const Upstream = createRequire(import.meta.url)('kafkajs/src/consumer/runner.js');
const Fixed = kafkajsInternal('src/consumer/runner.js');
const { KafkaJSProtocolError, isRebalancing } = kafkajsInternal('src/errors');
const { createErrorFromCode } = kafkajsInternal('src/protocol/error');
const REBALANCE_IN_PROGRESS = 27;
const UNKNOWN_MEMBER_ID = 25;
const ILLEGAL_GENERATION = 22;
const GROUP_COORDINATOR_NOT_AVAILABLE = 15;

const quietLogger = {
  namespace: () => quietLogger,
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** A consumer group whose commit interval never elapses during a test: only an unconditional commit commits. */
function group() {
  const events: string[] = [];
  let resolved: string[] = [];
  let heartbeatError: Error | undefined;
  const consumerGroup = {
    groupId: 'g',
    memberId: 'm',
    generationId: 1,
    events,
    failNextHeartbeat(error: Error) {
      heartbeatError = error;
    },
    resolveOffset({ partition, offset }: { partition: number; offset: string }) {
      resolved.push(`${partition}:${offset}`);
    },
    async commitOffsets() {
      if (resolved.length > 0) events.push(`commit ${resolved.join(',')}`);
      resolved = [];
    },
    async commitOffsetsIfNecessary() {},
    async heartbeat() {
      const error = heartbeatError;
      heartbeatError = undefined;
      if (error) throw error;
    },
    async leave() {
      events.push('leave');
    },
    async fetch() {
      return [];
    },
    hasSeekOffset: () => false,
    isPaused: () => false,
    getNodeIds: () => [],
    pause() {},
    resume() {},
    uncommittedOffsets: () => ({ topics: [] }),
  };
  return consumerGroup;
}

function batch(partition: number, offset: number) {
  const messages = [{ offset: String(offset), value: Buffer.from('v') }];
  return {
    topic: 't',
    partition,
    highWatermark: String(offset + 1),
    messages,
    offsetLag: () => '0',
    offsetLagLow: () => '0',
    firstOffset: () => String(offset),
    lastOffset: () => String(offset),
    isEmpty: () => false,
    isEmptyDueToFiltering: () => false,
  };
}

function runner(
  Runner: any,
  eachBatch: (payload: any) => Promise<void> = async () => {},
  onCrash: (error: Error) => unknown = () => {},
) {
  const consumerGroup = group();
  const instance = new Runner({
    logger: quietLogger,
    consumerGroup,
    instrumentationEmitter: { emit() {} },
    concurrency: 1,
    eachBatch,
    onCrash,
    retry: { retries: 0 },
  });
  instance.running = true;
  return { instance, events: consumerGroup.events, consumerGroup };
}

const rebalancing = () => new KafkaJSProtocolError(createErrorFromCode(REBALANCE_IN_PROGRESS));

describe('kafkajs Runner: commits after a batch (the fix in place of src/consumer/runner.js)', () => {
  it('released: commits after every batch whatever autoCommitInterval says (one coordinator round trip per batch)', async () => {
    const { instance, events } = runner(Upstream);
    for (let offset = 0; offset < 3; offset++) await instance.handleBatch(batch(0, offset));
    expect(events).toEqual(['commit 0:0', 'commit 0:1', 'commit 0:2']);
  });

  it('fixed: a batch that ends while running commits only when the interval or threshold says so', async () => {
    const { instance, events, consumerGroup } = runner(Fixed);
    let ifNecessary = 0;
    consumerGroup.commitOffsetsIfNecessary = async () => {
      ifNecessary++;
    };
    for (let offset = 0; offset < 3; offset++) await instance.handleBatch(batch(0, offset));
    expect(events).toEqual([]);
    expect(ifNecessary).toBe(3);
  });

  /** The interval's commit, answered by the coordinator only when the test says so. */
  function slowIntervalCommit(consumerGroup: ReturnType<typeof group>) {
    const started: string[] = [];
    const answers: { resolve: () => void; reject: (error: Error) => void }[] = [];
    consumerGroup.commitOffsetsIfNecessary = () => {
      started.push(`commit ${answers.length + 1}`);
      return new Promise<void>((resolve, reject) => answers.push({ resolve, reject }));
    };
    return { started, answers };
  }
  const settled = () => new Promise((resolve) => setImmediate(resolve));

  it('released: a batch ends (and its fetcher fetches again) only once the coordinator answered the commit', async () => {
    const { instance, consumerGroup } = runner(Upstream);
    instance.autoCommitOffsets = () => consumerGroup.commitOffsetsIfNecessary();
    const { answers } = slowIntervalCommit(consumerGroup);
    let ended = false;
    const handled = instance.handleBatch(batch(0, 0)).then(() => (ended = true));
    await settled();
    expect(ended).toBe(false);
    answers[0]!.resolve();
    await handled;
  });

  it('fixed: the interval commit runs beside the next batches, one at a time, and the next batch after it commits again', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    const { started, answers } = slowIntervalCommit(consumerGroup);
    await instance.handleBatch(batch(0, 0));
    // Ended with the commit unanswered; the batches meanwhile start no second commit.
    await instance.handleBatch(batch(1, 1));
    await instance.fetch(1);
    expect(started).toEqual(['commit 1']);
    answers[0]!.resolve();
    await settled();
    await instance.handleBatch(batch(0, 2));
    expect(started).toEqual(['commit 1', 'commit 2']);
  });

  it('fixed: a failed interval commit is thrown from the next batch, as kafkajs would have thrown it from its own', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    const { started, answers } = slowIntervalCommit(consumerGroup);
    await instance.handleBatch(batch(0, 0));
    answers[0]!.reject(rebalancing());
    await settled();
    await expect(instance.handleBatch(batch(0, 1))).rejects.toThrow(/rebalanc/i);
    // Thrown once: the rejoin that follows starts afresh.
    await instance.handleBatch(batch(0, 2));
    expect(started).toEqual(['commit 1', 'commit 2']);
  });

  it('fixed: an interval commit that fails after the consumer rejoined (a new generation) is not thrown again', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    const { started, answers } = slowIntervalCommit(consumerGroup);
    await instance.handleBatch(batch(0, 0));
    consumerGroup.generationId = 2;
    answers[0]!.reject(rebalancing());
    await settled();
    await instance.handleBatch(batch(0, 1));
    expect(started).toEqual(['commit 1', 'commit 2']);
  });

  it('fixed: an interval commit that failed before a rejoin which committed nothing (unknown member) is not thrown into the new generation', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    const { started, answers } = slowIntervalCommit(consumerGroup);
    await instance.handleBatch(batch(0, 0));
    // Evicted: the commit fails in the generation it started in; the heartbeat's UNKNOWN_MEMBER_ID is no rebalance
    // error to kafkajs (no commit before it), and the consumer rejoins as a new member in a new generation.
    answers[0]!.reject(new KafkaJSProtocolError(createErrorFromCode(UNKNOWN_MEMBER_ID)));
    await settled();
    consumerGroup.generationId = 2;
    // Thrown here, it would make the consumer rejoin (again as a new member) and rebalance the whole group again.
    await instance.handleBatch(batch(0, 1));
    expect(started).toEqual(['commit 1', 'commit 2']);
  });

  it('fixed: the heartbeat after a batch, empty or not, goes to the consumer group only once the group itself would send it', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    instance.heartbeatInterval = 3_000;
    let heartbeats = 0;
    consumerGroup.heartbeat = async () => {
      heartbeats++;
    };
    const empty = { ...batch(0, 0), messages: [], isEmpty: () => true };
    Object.assign(consumerGroup, { lastRequest: Date.now() });
    await instance.handleBatch(batch(0, 0));
    await instance.handleBatch(empty);
    expect(heartbeats).toBe(0);
    // kafkajs's shared heartbeat sends when now >= lastRequest + interval; so does the runner call it.
    Object.assign(consumerGroup, { lastRequest: Date.now() - 3_000 });
    await instance.handleBatch(batch(0, 1));
    await instance.handleBatch(empty);
    expect(heartbeats).toBe(2);
  });

  it('fixed: the commit check after a batch goes to the consumer group only when the offset manager would commit', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    let checks = 0;
    consumerGroup.commitOffsetsIfNecessary = async () => {
      checks++;
    };
    const offsetManager = { autoCommitInterval: 1_000, autoCommitThreshold: null, lastCommit: Date.now() };
    Object.assign(consumerGroup, { offsetManager });
    await instance.handleBatch(batch(0, 0));
    expect(checks).toBe(0);
    // The interval passed: the released check runs (and commits).
    offsetManager.lastCommit = Date.now() - 1_000;
    await instance.handleBatch(batch(0, 1));
    await settled();
    expect(checks).toBe(1);
    // A threshold is counted by the released check itself, whatever the interval says.
    Object.assign(offsetManager, { autoCommitThreshold: 100, lastCommit: Date.now() });
    await instance.handleBatch(batch(0, 2));
    expect(checks).toBe(2);
  });

  it('fixed: the batch events carry the released payload for a listener, and without one the payload is not computed', async () => {
    const InstrumentationEventEmitter = kafkajsInternal('src/instrumentation/emitter');
    const { events } = kafkajsInternal('src/consumer/instrumentationEvents');
    const { instance } = runner(Fixed);
    instance.instrumentationEmitter = new InstrumentationEventEmitter();
    let lagComputed = 0;
    const counted = () => ({
      ...batch(0, 4),
      highWatermark: '10',
      offsetLag: () => {
        lagComputed++;
        return '5';
      },
    });
    await instance.handleBatch(counted());
    expect(lagComputed).toBe(0);
    const seen: any[] = [];
    instance.instrumentationEmitter.addListener(events.START_BATCH_PROCESS, (e: any) => seen.push(e.payload));
    instance.instrumentationEmitter.addListener(events.END_BATCH_PROCESS, (e: any) => seen.push(e.payload));
    await instance.handleBatch(counted());
    expect(lagComputed).toBe(1);
    const payload = {
      topic: 't',
      partition: 0,
      highWatermark: '10',
      offsetLag: '5',
      offsetLagLow: '0',
      batchSize: 1,
      firstOffset: '4',
      lastOffset: '4',
    };
    expect(seen).toEqual([payload, { ...payload, duration: expect.any(Number) }]);
  });

  it('fixed: with an interval of 0 (a commit after every batch) the batch still ends only once the commit is answered', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    Object.assign(consumerGroup, { autoCommitInterval: 0 });
    const { answers } = slowIntervalCommit(consumerGroup);
    let ended = false;
    const handled = instance.handleBatch(batch(0, 0)).then(() => (ended = true));
    await settled();
    expect(ended).toBe(false);
    answers[0]!.resolve();
    await handled;
  });

  it('fixed: stop() waits for the interval commit under way, then commits everything resolved since', async () => {
    const { instance, events, consumerGroup } = runner(Fixed);
    const { answers } = slowIntervalCommit(consumerGroup);
    await instance.handleBatch(batch(0, 0));
    const stopping = instance.stop();
    await settled();
    expect(events).toEqual([]);
    answers[0]!.resolve();
    await stopping;
    expect(events).toEqual(['commit 0:0', 'leave']);
  });

  it('fixed: an idle fetch (no batch, or empty batches) gives the interval a chance to commit earlier batches, once', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    const manager = { autoCommitInterval: 1_000, lastCommit: Date.now() - 1_000 };
    let ifNecessary = 0;
    Object.assign(consumerGroup, {
      offsetManager: manager,
      async commitOffsetsIfNecessary() {
        ifNecessary++;
        manager.lastCommit = Date.now();
      },
    });
    // The released fetch heartbeats after an empty fetch, which starts the commit; the fetch's own check then finds
    // it done.
    expect(await instance.fetch(1)).toEqual([]);
    expect(ifNecessary).toBe(1);
    jest.setSystemTime(Date.now() + 1_000);
    await instance.handleBatch({ ...batch(0, 1), messages: [], isEmpty: () => true });
    expect(ifNecessary).toBe(2);
  });

  it("fixed: a fetch's empty batches end at the fetch with one commit check and one heartbeat check; the workers get the others", async () => {
    const { instance, consumerGroup } = runner(Fixed);
    instance.heartbeatInterval = 3_000;
    let checks = 0;
    let heartbeats = 0;
    consumerGroup.commitOffsetsIfNecessary = async () => {
      checks++;
    };
    consumerGroup.heartbeat = async () => {
      heartbeats++;
    };
    const empty = (partition: number) => ({ ...batch(partition, 0), messages: [], isEmpty: () => true });
    const filtered = { ...empty(3), isEmptyDueToFiltering: () => true };
    const withRecords = batch(1, 5);
    Object.assign(consumerGroup, { lastRequest: Date.now() - 3_000, sessionTimeout: 30_000 });
    consumerGroup.fetch = async () => [empty(0), withRecords, empty(2), filtered] as any;
    expect(await instance.fetch(1)).toEqual([withRecords, filtered]);
    expect([checks, heartbeats]).toEqual([1, 1]);
    // Nothing dropped: the batches' own handleBatch checks, as released.
    consumerGroup.fetch = async () => [withRecords] as any;
    expect(await instance.fetch(1)).toEqual([withRecords]);
    expect([checks, heartbeats]).toEqual([1, 1]);
    // The session lapsed: every batch goes on to handleBatch, which heartbeats and waits on each empty one.
    const lapsed = [empty(0), withRecords];
    Object.assign(consumerGroup, { lastRequest: Date.now() - 30_000, joinedAt: 0 });
    consumerGroup.fetch = async () => lapsed as any;
    expect(await instance.fetch(1)).toEqual(lapsed);
  });

  it('fixed: stop() commits everything resolved before leaving the group', async () => {
    const { instance, events } = runner(Fixed);
    await instance.handleBatch(batch(0, 0));
    await instance.handleBatch(batch(1, 5));
    await instance.stop();
    expect(events).toEqual(['commit 0:0,1:5', 'leave']);
  });

  it('fixed: stop() still leaves the group when the commit fails', async () => {
    const { instance, events, consumerGroup } = runner(Fixed);
    await instance.handleBatch(batch(0, 0));
    consumerGroup.commitOffsets = async () => {
      throw new Error('coordinator unreachable');
    };
    await instance.stop();
    expect(events).toEqual(['leave']);
  });

  it('fixed: the batch that ends after stop() began commits at once', async () => {
    const { instance, events } = runner(Fixed, async () => {
      instance.running = false;
    });
    await instance.handleBatch(batch(0, 7));
    expect(events).toEqual(['commit 0:7']);
  });

  it('fixed: a heartbeat that reports a rebalance commits, and so does every batch of that generation ending later', async () => {
    const { instance, events, consumerGroup } = runner(Fixed);
    await instance.handleBatch(batch(0, 0));
    consumerGroup.failNextHeartbeat(rebalancing());
    await expect(instance.handleBatch(batch(1, 1))).rejects.toThrow(/rebalanc/i);
    expect(events).toEqual(['commit 0:0,1:1']);

    // Another partition's batch of the same fetch, still running when the rebalance was seen.
    await instance.handleBatch(batch(2, 2));
    expect(events).toEqual(['commit 0:0,1:1', 'commit 2:2']);

    // After the rejoin (a new generation), the interval applies again.
    consumerGroup.generationId = 2;
    await instance.handleBatch(batch(0, 3));
    expect(events).toEqual(['commit 0:0,1:1', 'commit 2:2']);
  });

  it('both: a handler error commits what was resolved before it', async () => {
    for (const Runner of [Upstream, Fixed]) {
      const { instance, events } = runner(Runner, async ({ resolveOffset }: any) => {
        resolveOffset('3');
        throw new Error('handler failed');
      });
      instance.eachBatchAutoResolve = false;
      await expect(instance.handleBatch(batch(0, 4))).rejects.toThrow('handler failed');
      expect(events).toEqual(['commit 0:3']);
    }
  });

  it('fixed: a crash of a running consumer commits, then leaves the group, before kafkajs handles it (released: neither here; its onCrash leaves through disconnect() only while running is still true, which the commit awaited past)', async () => {
    for (const [Runner, expected] of [
      [Upstream, ['crash']],
      [Fixed, ['commit 0:0', 'leave', 'crash']],
    ] as const) {
      const { instance, events } = runner(Runner, undefined, () => events.push('crash'));
      // Released: the batch commits itself; empty the log to see what the crash does.
      await instance.handleBatch(batch(0, 0));
      if (Runner === Upstream) events.length = 0;
      await instance.onCrash(new Error('retries exhausted'));
      expect(events).toEqual(expected);
    }
  });
});

describe('kafkajs Runner: a batch that runs long does not hold back what the other batches resolved', () => {
  const INTERVAL_MS = 1_000;
  const settled = () => new Promise((resolve) => setImmediate(resolve));

  /**
   * A runner whose group commits at the interval (its offset manager's test, as kafkajs's), and whose batches of
   * partition 0 block until released, their heartbeat (the member's batch timer calls it) handed to the test.
   */
  function blockingRunner(intervalMs = INTERVAL_MS) {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let heartbeat: (() => Promise<void>) | undefined;
    const { instance, events, consumerGroup } = runner(Fixed, async (payload) => {
      if (payload.batch.partition !== 0) return;
      heartbeat = payload.heartbeat;
      await held;
    });
    const manager = { autoCommitInterval: intervalMs, lastCommit: Date.now() };
    Object.assign(consumerGroup, {
      offsetManager: manager,
      autoCommitInterval: intervalMs,
      async commitOffsetsIfNecessary() {
        if (Date.now() < manager.lastCommit + intervalMs) return;
        await consumerGroup.commitOffsets();
        manager.lastCommit = Date.now();
      },
    });
    const beat = () => heartbeat!();
    return { instance, events, consumerGroup, release, beat };
  }

  it("fixed: the running batch's heartbeat commits, once the interval passed, what the others resolved; never its own", async () => {
    const { instance, events, release, beat } = blockingRunner();
    const hung = instance.handleBatch(batch(0, 0));
    await instance.handleBatch(batch(1, 5));
    await instance.handleBatch(batch(2, 7));
    await beat();
    expect(events).toEqual([]);
    jest.setSystemTime(Date.now() + INTERVAL_MS);
    await beat();
    await settled();
    expect(events).toEqual(['commit 1:5,2:7']);
    // One commit an interval, however often the batch heartbeats.
    await beat();
    await settled();
    expect(events).toEqual(['commit 1:5,2:7']);
    release();
    await hung;
    await instance.stop();
    expect(events).toEqual(['commit 1:5,2:7', 'commit 0:0', 'leave']);
  });

  it('released: nothing commits until the running batch ends', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { instance, events, consumerGroup } = runner(Upstream, async (payload) => {
      if (payload.batch.partition === 0) await held;
    });
    instance.autoCommitOffsets = () => consumerGroup.commitOffsetsIfNecessary();
    const hung = instance.handleBatch(batch(0, 0));
    await instance.handleBatch(batch(1, 5));
    await instance.heartbeat();
    jest.setSystemTime(Date.now() + INTERVAL_MS);
    await instance.heartbeat();
    await settled();
    expect(events).toEqual([]);
    release();
    await hung;
  });

  it.each([
    ['REBALANCE_IN_PROGRESS', REBALANCE_IN_PROGRESS],
    ['ILLEGAL_GENERATION (the member was removed from the group meanwhile)', ILLEGAL_GENERATION],
  ])(
    "fixed: the heartbeat's commit answered %s: kept for a batch end, which throws it (kafkajs rejoins); no other commit starts from the heartbeat meanwhile",
    async (_name, code) => {
      const { instance, events, consumerGroup, release, beat } = blockingRunner();
      const hung = instance.handleBatch(batch(0, 0));
      await instance.handleBatch(batch(1, 5));
      let commits = 0;
      const commit = consumerGroup.commitOffsetsIfNecessary;
      consumerGroup.commitOffsetsIfNecessary = async () => {
        commits++;
        if (commits === 1) throw new KafkaJSProtocolError(createErrorFromCode(code));
        return commit();
      };
      jest.setSystemTime(Date.now() + INTERVAL_MS);
      await beat();
      await settled();
      jest.setSystemTime(Date.now() + INTERVAL_MS);
      await beat();
      await settled();
      expect({ commits, events }).toEqual({ commits: 1, events: [] });
      const thrown = await instance.handleBatch(batch(2, 7)).catch((error: { type?: string }) => error);
      expect({ type: thrown?.type, rebalancing: isRebalancing(thrown) }).toEqual({
        type: createErrorFromCode(code).type,
        rebalancing: true,
      });
      release();
      await hung;
    },
  );

  it('fixed: a rebalance the heartbeat reports while its commit is under way: that commit is answered first, then the rest is committed and the rebalance thrown', async () => {
    const { instance, events, consumerGroup, release, beat } = blockingRunner();
    const hung = instance.handleBatch(batch(0, 0));
    await instance.handleBatch(batch(1, 5));
    const answers: (() => void)[] = [];
    consumerGroup.commitOffsetsIfNecessary = () => {
      // Takes the resolved offsets when it starts, as kafkajs's offset manager does.
      void consumerGroup.commitOffsets();
      return new Promise<void>((resolve) => answers.push(resolve));
    };
    jest.setSystemTime(Date.now() + INTERVAL_MS);
    await beat();
    expect(events).toEqual(['commit 1:5']);
    await instance.handleBatch(batch(2, 7));
    consumerGroup.failNextHeartbeat(rebalancing());
    const beating = beat();
    await settled();
    expect(events).toEqual(['commit 1:5']);
    answers[0]!();
    await expect(beating).rejects.toThrow(/rebalanc/i);
    expect(events).toEqual(['commit 1:5', 'commit 2:7']);
    release();
    await hung;
    // A batch of the rebalancing generation commits when it ends.
    expect(events).toEqual(['commit 1:5', 'commit 2:7', 'commit 0:0']);
  });

  it('fixed: with an interval of 0 (each batch end commits and waits) or the session lapsed, the heartbeat commits nothing', async () => {
    const everyBatch = blockingRunner(0);
    const hung = everyBatch.instance.handleBatch(batch(0, 0));
    await settled();
    everyBatch.events.length = 0;
    let started = 0;
    everyBatch.consumerGroup.commitOffsetsIfNecessary = async () => {
      started++;
    };
    jest.setSystemTime(Date.now() + INTERVAL_MS);
    await everyBatch.beat();
    expect(started).toBe(0);
    everyBatch.release();
    await hung;

    const lapsed = blockingRunner();
    const running = lapsed.instance.handleBatch(batch(0, 0));
    await lapsed.instance.handleBatch(batch(1, 5));
    Object.assign(lapsed.consumerGroup, { sessionTimeout: 6_000, lastRequest: Date.now() });
    jest.setSystemTime(Date.now() + 6_000);
    await lapsed.beat();
    await settled();
    expect(lapsed.events).toEqual([]);
    lapsed.release();
    await running;
  });
});

describe('kafkajs Runner: the hook before a rejoin (beforeRejoin)', () => {
  it('fixed: awaited before a rejoin, not the first join; what it resolved is committed before the join', async () => {
    const consumerGroup: ReturnType<typeof group> & { joinAndSync?: () => Promise<void> } = group();
    consumerGroup.generationId = null as unknown as number;
    consumerGroup.joinAndSync = async () => {
      consumerGroup.events.push('join');
      consumerGroup.generationId = 1;
    };
    const eachBatch = async () => {};
    const resolves = ['7', undefined];
    let calls = 0;
    beforeRejoin(eachBatch, async () => {
      calls++;
      const offset = resolves.shift();
      if (offset) consumerGroup.resolveOffset({ partition: 0, offset });
      return offset !== undefined;
    });
    new Fixed({
      logger: quietLogger,
      consumerGroup,
      instrumentationEmitter: { emit() {} },
      concurrency: 1,
      eachBatch,
      onCrash() {},
      retry: { retries: 0 },
    });
    await consumerGroup.joinAndSync();
    expect(calls).toBe(0);
    await consumerGroup.joinAndSync();
    await consumerGroup.joinAndSync();
    expect(calls).toBe(2);
    expect(consumerGroup.events).toEqual(['join', 'commit 0:7', 'join', 'join']);
  });
});

describe('kafkajs Runner: a group coordinator that answers late or is unavailable', () => {
  const unavailable = () => new KafkaJSProtocolError(createErrorFromCode(GROUP_COORDINATOR_NOT_AVAILABLE));
  const settled = () => new Promise((resolve) => setImmediate(resolve));

  /** Heartbeats answered only when the test says so; the last one the coordinator answered was `answeredAgoMs` ago. */
  function lateHeartbeats(consumerGroup: ReturnType<typeof group>, answeredAgoMs = 0) {
    const answers: { resolve: () => void; reject: (error: Error) => void }[] = [];
    Object.assign(consumerGroup, {
      sessionTimeout: 6_000,
      lastRequest: Date.now() - answeredAgoMs,
      heartbeat: () => new Promise<void>((resolve, reject) => answers.push({ resolve, reject })),
    });
    return answers;
  }

  it('released: a batch ends (and its fetcher fetches again) only once the coordinator answered the heartbeat', async () => {
    const { instance, consumerGroup } = runner(Upstream);
    const answers = lateHeartbeats(consumerGroup);
    let ended = false;
    const handled = instance.handleBatch(batch(0, 0)).then(() => (ended = true));
    await settled();
    await settled();
    expect(ended).toBe(false);
    answers[0]!.resolve();
    await handled;
  });

  it('fixed: the batches and idle fetches end without waiting for it, one heartbeat at a time', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    const answers = lateHeartbeats(consumerGroup);
    await instance.handleBatch(batch(0, 0));
    await instance.handleBatch(batch(1, 1));
    await instance.fetch(1);
    expect(answers).toHaveLength(1);
    answers[0]!.resolve();
    await settled();
    await instance.handleBatch(batch(0, 2));
    expect(answers).toHaveLength(2);
  });

  it('fixed: a rebalance answered late is thrown from the next call, after a commit, as kafkajs would have thrown it', async () => {
    const { instance, events, consumerGroup } = runner(Fixed);
    const answers = lateHeartbeats(consumerGroup);
    await instance.handleBatch(batch(0, 0));
    answers[0]!.reject(rebalancing());
    await settled();
    await expect(instance.handleBatch(batch(1, 1))).rejects.toThrow(/rebalanc/i);
    expect(events).toEqual(['commit 0:0,1:1']);
  });

  it('fixed: a heartbeat that failed in a generation the consumer already left is not thrown into the next', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    const answers = lateHeartbeats(consumerGroup);
    await instance.handleBatch(batch(0, 0));
    answers[0]!.reject(new KafkaJSProtocolError(createErrorFromCode(UNKNOWN_MEMBER_ID)));
    consumerGroup.generationId = 2;
    await settled();
    await instance.handleBatch(batch(0, 1));
    expect(answers).toHaveLength(2);
  });

  it('fixed: an unavailable coordinator within the session timeout is not thrown, a call after the retry backoff sends again; past it, it is', async () => {
    const within = runner(Fixed);
    const answers = lateHeartbeats(within.consumerGroup, 2_000);
    await within.instance.handleBatch(batch(0, 0));
    answers[0]!.reject(unavailable());
    await settled();
    await within.instance.handleBatch(batch(0, 1));
    expect(answers).toHaveLength(1); // within the retry backoff
    jest.setSystemTime(Date.now() + 99);
    await within.instance.handleBatch(batch(0, 2));
    expect(answers).toHaveLength(1); // still within it
    jest.setSystemTime(Date.now() + 1);
    await within.instance.handleBatch(batch(0, 3));
    expect(answers).toHaveLength(2);

    const past = runner(Fixed);
    const late = lateHeartbeats(past.consumerGroup, 4_000);
    await past.instance.handleBatch(batch(0, 0));
    late[0]!.reject(unavailable());
    await settled();
    await expect(past.instance.handleBatch(batch(0, 1))).rejects.toThrow(/coordinator is not available/);
  });

  it('fixed: an interval commit the coordinator could not take is not thrown; the next interval commit carries its offsets', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    let commits = 0;
    consumerGroup.commitOffsetsIfNecessary = async () => {
      commits++;
      if (commits === 1) throw unavailable();
    };
    await instance.handleBatch(batch(0, 0));
    await settled();
    jest.setSystemTime(Date.now() + 100); // the retry backoff after a first failure
    await instance.handleBatch(batch(0, 1));
    expect(commits).toBe(2);
  });

  it('fixed: a coordinator that died or moved (the consumer group marked it unknown) is not thrown before the session lapsed; a call after the backoff looks it up and sends again', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    const answers = lateHeartbeats(consumerGroup, 4_000);
    await instance.handleBatch(batch(0, 0));
    Object.assign(consumerGroup, { coordinatorUnknown: true });
    answers[0]!.reject(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'));
    await settled();
    await instance.handleBatch(batch(0, 1));
    expect(answers).toHaveLength(1); // not thrown, and within the retry backoff
    jest.setSystemTime(Date.now() + 100);
    await instance.handleBatch(batch(0, 2));
    expect(answers).toHaveLength(2);
  });

  it('fixed: an interval commit that found the coordinator gone is not thrown; the next carries its offsets', async () => {
    const { instance, consumerGroup } = runner(Fixed);
    let commits = 0;
    consumerGroup.commitOffsetsIfNecessary = async () => {
      commits++;
      if (commits === 1) {
        Object.assign(consumerGroup, { coordinatorUnknown: true });
        throw new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
      }
    };
    await instance.handleBatch(batch(0, 0));
    await settled();
    jest.setSystemTime(Date.now() + 100); // the retry backoff after a first failure
    await instance.handleBatch(batch(0, 1));
    expect(commits).toBe(2);
  });

  it('fixed: after an interval commit failed with the coordinator gone or unavailable, the next waits the retry backoff (100 ms), not the next batch end', async () => {
    const gone = (consumerGroup: any) => {
      consumerGroup.coordinatorUnknown = true;
      return new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    };
    for (const failure of [gone, unavailable]) {
      const { instance, consumerGroup } = runner(Fixed);
      let commits = 0;
      consumerGroup.commitOffsetsIfNecessary = async () => {
        commits++;
        throw failure(consumerGroup);
      };
      let offset = 0;
      const batches = async (count: number) => {
        for (const end = offset + count; offset < end; offset++) {
          await instance.handleBatch(batch(0, offset));
          await settled(); // the coordinator's answer lands
        }
      };
      await batches(20);
      expect(commits).toBe(1);
      for (const sent of [2, 3, 4, 5]) {
        jest.setSystemTime(Date.now() + 99);
        await batches(10);
        expect(commits).toBe(sent - 1);
        jest.setSystemTime(Date.now() + 1);
        await batches(10);
        expect(commits).toBe(sent);
      }
    }
  });

  it("fixed: with an interval of 0 (kafkajs's own commit after every batch), commits the coordinator could not take are still thrown, and reported as the interval commit's are; an answered one ends it", async () => {
    const eachBatch = async () => {};
    const { instance, consumerGroup } = runner(Fixed, eachBatch);
    // Heartbeats answered all along: only the commits fail.
    Object.assign(consumerGroup, { autoCommitInterval: 0, sessionTimeout: 6_000, lastRequest: Date.now() });
    let failing = true;
    consumerGroup.commitOffsetsIfNecessary = async () => {
      if (failing) throw unavailable();
    };
    await expect(instance.handleBatch(batch(0, 0))).rejects.toThrow(/coordinator is not available/);
    jest.setSystemTime(Date.now() + 6_000);
    Object.assign(consumerGroup, { lastRequest: Date.now() });
    await expect(instance.handleBatch(batch(0, 1))).rejects.toThrow(/coordinator is not available/);
    expect(coordinatorProblem(eachBatch)).toMatch(/^commits to the group coordinator .* have failed for 6 s/);
    failing = false;
    await instance.handleBatch(batch(0, 2));
    expect(coordinatorProblem(eachBatch)).toBeUndefined();
  });

  it('released: a member whose heartbeats went unanswered for the session timeout goes on handling its batches', async () => {
    const { instance, consumerGroup } = runner(Upstream, async ({ batch: b }) => {
      handled.push(b.firstOffset());
    });
    const handled: string[] = [];
    Object.assign(consumerGroup, { sessionTimeout: 6_000, lastRequest: Date.now() - 7_000 });
    await instance.handleBatch(batch(0, 0));
    expect(handled).toEqual(['0']);
  });

  it('fixed: no heartbeat answered for the session timeout: batches are not handed to eachBatch (nothing resolved, fetched again) and the heartbeat goes on; once answered, they are', async () => {
    const handled: string[] = [];
    const { instance, consumerGroup } = runner(Fixed, async ({ batch: b, resolveOffset }) => {
      handled.push(b.firstOffset());
      resolveOffset(b.lastOffset());
    });
    const answers = lateHeartbeats(consumerGroup, 7_000);
    const resolved: string[] = [];
    consumerGroup.resolveOffset = ({ offset }) => void resolved.push(offset);
    await instance.handleBatch(batch(0, 0));
    expect(handled).toEqual([]);
    expect(resolved).toEqual([]);
    expect(answers).toHaveLength(1);
    // A heartbeat still unanswered counts as none: the next batch is held back too.
    await instance.handleBatch(batch(0, 0));
    expect(handled).toEqual([]);
    Object.assign(consumerGroup, { lastRequest: Date.now() });
    answers[0]!.resolve();
    await instance.handleBatch(batch(0, 0));
    expect(handled).toEqual(['0']);
    expect(resolved).toContain('0');
  });

  it('fixed: the session counts from the join when no heartbeat was answered since', async () => {
    const handled: string[] = [];
    const { instance, consumerGroup } = runner(
      Fixed,
      async ({ batch: b }) => void handled.push(b.firstOffset()),
    );
    lateHeartbeats(consumerGroup, 7_000);
    Object.assign(consumerGroup, { joinedAt: Date.now() - 1_000 });
    await instance.handleBatch(batch(0, 0));
    expect(handled).toEqual(['0']);
  });

  it('isCoordinatorUnavailable / keepsFetchingAfterHeartbeat / sessionLapsed', () => {
    expect(keepsFetchingAfterHeartbeat(new Error('connect ECONNREFUSED'), 5_999, 6_000, true)).toBe(true);
    expect(keepsFetchingAfterHeartbeat(new Error('connect ECONNREFUSED'), 6_000, 6_000, true)).toBe(false);
    expect(keepsFetchingAfterHeartbeat(new Error('connect ECONNREFUSED'), 0, 6_000, false)).toBe(false);
    expect(sessionLapsed(5_999, 6_000)).toBe(false);
    expect(sessionLapsed(6_000, 6_000)).toBe(true);
    expect(isCoordinatorUnavailable(unavailable())).toBe(true);
    expect(isCoordinatorUnavailable(rebalancing())).toBe(false);
    expect(isCoordinatorUnavailable(new Error('boom'))).toBe(false);
    expect(keepsFetchingAfterHeartbeat(unavailable(), 2_999, 6_000)).toBe(true);
    expect(keepsFetchingAfterHeartbeat(unavailable(), 3_000, 6_000)).toBe(false);
    expect(keepsFetchingAfterHeartbeat(rebalancing(), 0, 6_000)).toBe(false);
  });
});

describe('kafkajs Runner: resolving outside a batch in the current consumer group (resolveInCurrentGroup)', () => {
  const build = (consumerGroup: object, eachBatch: unknown, eachMessage?: unknown) =>
    new Fixed({
      logger: quietLogger,
      consumerGroup,
      instrumentationEmitter: { emit() {} },
      concurrency: 1,
      eachBatch,
      eachMessage,
      onCrash() {},
      retry: { retries: 0 },
    });

  it("resolves in the latest run's group (kafkajs builds one per restart); not before that group joined", () => {
    const eachBatch = async () => {};
    const crashed = { ...group(), offsetManager: {} };
    const restarted: ReturnType<typeof group> & { offsetManager: object | null } = {
      ...group(),
      offsetManager: null,
    };
    const resolved: string[] = [];
    crashed.resolveOffset = ({ offset }) => void resolved.push(`crashed ${offset}`);
    restarted.resolveOffset = ({ offset }) => void resolved.push(`restarted ${offset}`);
    build(crashed, eachBatch);
    build(restarted, eachBatch);
    expect(resolveInCurrentGroup(eachBatch, 't', 0, '5')).toBe(false);
    restarted.offsetManager = {};
    expect(resolveInCurrentGroup(eachBatch, 't', 0, '5')).toBe(true);
    expect(resolved).toEqual(['restarted 5']);
  });

  it('an eachMessage run (no eachBatch) is built as released', () => {
    expect(() => build(group(), null, async () => {})).not.toThrow();
  });
});
