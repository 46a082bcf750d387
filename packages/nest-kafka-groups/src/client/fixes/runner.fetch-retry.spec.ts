import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';
import { type Retrier, retryCountingFailuresInARow } from './runner.js';

/** What a fetch answered: a batch with records (the runner drops empty ones at the fetch). */
const batchWithRecords = { isEmpty: () => false, isEmptyDueToFiltering: () => false };

/**
 * The fetch loop's retry count. kafkajs's Runner runs every fetcher inside one call of its retrier, for the
 * consumer's whole life: each transient error of the loop counts against `retry.retries`, however many fetches
 * succeeded between two of them. Driven with an in-memory consumer group and a fetch manager whose every start
 * fetches once, then fails with a retriable error (a leader change, a timeout), on the installed kafkajs module
 * as released (upstream) and on the library's instance (fixed).
 */
const Upstream = createRequire(import.meta.url)('kafkajs/src/consumer/runner.js');
const Fixed = kafkajsInternal('src/consumer/runner.js');
const { KafkaJSError } = kafkajsInternal('src/errors');
const createRetry = kafkajsInternal('src/retry') as (options: object) => Retrier;
const quietLogger = { namespace: () => quietLogger, debug() {}, info() {}, warn() {}, error() {} };
const RETRY = { retries: 2, initialRetryTime: 1, maxRetryTime: 5 };

const transient = () => new KafkaJSError('The broker answered late', { retriable: true });

/**
 * Runs the Runner's fetch loop: each start of the fetch manager fetches (`fetches` times, answered) and then fails,
 * `failures` times in all; the next start stops the runner. Resolves with how it ended.
 */
function fetchLoop(Runner: any, failures: number, fetches: number) {
  return new Promise<{ starts: number; crash?: Error }>((resolve) => {
    let starts = 0;
    const consumerGroup = {
      groupId: 'g',
      memberId: 'm',
      generationId: 1,
      lastRequest: Date.now(),
      sessionTimeout: 30_000,
      fetch: async () => [batchWithRecords],
      heartbeat: async () => {},
      getNodeIds: () => [1],
    };
    const runner = new Runner({
      logger: quietLogger,
      consumerGroup,
      instrumentationEmitter: { emit() {} },
      concurrency: 1,
      eachBatch: async () => {},
      onCrash: (crash: Error) => resolve({ starts, crash }),
      retry: RETRY,
    });
    runner.fetchManager = {
      start: async () => {
        starts++;
        if (starts > failures) {
          runner.running = false;
          setImmediate(() => resolve({ starts }));
          return;
        }
        for (let i = 0; i < fetches; i++) await runner.fetch(1);
        throw transient();
      },
      stop: async () => {},
    };
    runner.running = true;
    runner.scheduleFetchManager();
  });
}

describe('kafkajs Runner: the fetch loop retry count', () => {
  it('released: transient errors with successful fetches between them crash the consumer after `retries` of them', async () => {
    const { starts, crash } = await fetchLoop(Upstream, 6, 3);
    expect(crash?.name).toBe('KafkaJSNumberOfRetriesExceeded');
    expect(starts).toBe(RETRY.retries + 1);
  });

  it('fixed: the count restarts after a fetch was answered, so the consumer goes on', async () => {
    const { starts, crash } = await fetchLoop(Fixed, 6, 3);
    expect(crash).toBeUndefined();
    expect(starts).toBe(7);
  });

  it('fixed: failures in a row with no fetch answered still crash it after `retries`, as released', async () => {
    const { starts, crash } = await fetchLoop(Fixed, 6, 0);
    expect(crash?.name).toBe('KafkaJSNumberOfRetriesExceeded');
    expect(starts).toBe(RETRY.retries + 1);
  });
});

describe('retryCountingFailuresInARow', () => {
  /** Runs `outcomes` through the retrier: 'ok' resolves, 'progress' moves progress then fails, 'fail' just fails. */
  async function attempts(outcomes: string[], retries: number) {
    let progress = 0;
    const seen: number[] = [];
    const retrier = retryCountingFailuresInARow(
      createRetry,
      { retries, initialRetryTime: 1, maxRetryTime: 2 },
      () => progress,
    );
    let i = 0;
    try {
      const value = await retrier(async (_bail, retryCount) => {
        seen.push(retryCount);
        const outcome = outcomes[i++];
        if (outcome === 'ok') return 'done';
        if (outcome === 'progress') progress++;
        throw transient();
      });
      return { value, seen };
    } catch (error) {
      return { error: (error as Error).name, seen };
    }
  }

  it('counts only failures with no progress between them', async () => {
    expect(await attempts(['fail', 'progress', 'fail', 'progress', 'fail', 'ok'], 2)).toEqual({
      value: 'done',
      seen: [0, 1, 1, 2, 1, 2],
    });
  });

  it('gives up after `retries` failures in a row, with kafkajs error', async () => {
    expect(await attempts(['progress', 'fail', 'fail', 'fail'], 2)).toEqual({
      error: 'KafkaJSNumberOfRetriesExceeded',
      seen: [0, 1, 2],
    });
    expect(await attempts(['fail', 'progress', 'fail', 'fail'], 2)).toEqual({
      error: 'KafkaJSNumberOfRetriesExceeded',
      seen: [0, 1, 1, 2],
    });
  });

  it('a non-retriable error after progress is still not retried', async () => {
    let progress = 0;
    const retrier = retryCountingFailuresInARow(
      createRetry,
      { retries: 3, initialRetryTime: 1 },
      () => progress,
    );
    let calls = 0;
    await expect(
      retrier(async (_bail, retryCount) => {
        calls++;
        if (retryCount === 0) throw transient();
        progress++;
        throw new KafkaJSError('refused', { retriable: false });
      }),
    ).rejects.toMatchObject({ name: 'KafkaJSNonRetriableError' });
    expect(calls).toBe(2);
  });
});
