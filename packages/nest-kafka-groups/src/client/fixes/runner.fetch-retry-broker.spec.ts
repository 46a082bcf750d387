import { describe, expect, it } from '@jest/globals';
import { kafkajsInternal } from '../kafkajs.js';

/** What a fetch answered: a batch with records (the runner drops empty ones at the fetch). */
const batchWithRecords = { isEmpty: () => false, isEmptyDueToFiltering: () => false };

/**
 * The fetch loop's retry count with several brokers. An error of one fetcher stops the fetch manager, which waits for
 * the other fetchers' fetches in flight: a healthy broker answers in every attempt. Its answers must not count as
 * progress for a broker whose fetches fail every time, or that broker's error is retried for ever (logged at debug
 * level only) instead of crashing the consumer after `retry.retries`, as released.
 */
const Fixed = kafkajsInternal('src/consumer/runner.js');
const { KafkaJSError } = kafkajsInternal('src/errors');
const quietLogger = { namespace: () => quietLogger, debug() {}, info() {}, warn() {}, error() {} };
const RETRY = { retries: 2, initialRetryTime: 1, maxRetryTime: 5 };

/**
 * Each start of the fetch manager fetches from broker 1 (answered) and broker 2, whose fetch fails while
 * `failing(start)`, else is answered and the start then fails once with a transient error of broker 1; after
 * `starts` starts the runner stops.
 */
function twoBrokers(starts: number, failing: (start: number) => boolean, healthyFirst: boolean) {
  return new Promise<{ starts: number; crash?: Error }>((resolve) => {
    let started = 0;
    const consumerGroup = {
      groupId: 'g',
      memberId: 'm',
      generationId: 1,
      lastRequest: Date.now(),
      sessionTimeout: 30_000,
      fetch: async (nodeId: number) => {
        if (nodeId === 2 && failing(started))
          throw new KafkaJSError('The broker is stuck (node 2)', { retriable: true });
        return [batchWithRecords];
      },
      heartbeat: async () => {},
      getNodeIds: () => [1, 2],
      unreachableFetches: new Map<string, number>(),
    };
    const runner = new Fixed({
      logger: quietLogger,
      consumerGroup,
      instrumentationEmitter: { emit() {} },
      concurrency: 1,
      eachBatch: async () => {},
      onCrash: (crash: Error) => resolve({ starts: started, crash }),
      retry: RETRY,
    });
    runner.fetchManager = {
      start: async () => {
        started++;
        if (started > starts) {
          runner.running = false;
          setImmediate(() => resolve({ starts: started }));
          return;
        }
        // As fetchManager.start: the first error stops the others, whose fetch in flight is still answered.
        const fetches = healthyFirst
          ? [runner.fetch(1), runner.fetch(2)]
          : [runner.fetch(2), runner.fetch(1)];
        const outcomes = await Promise.allSettled(fetches);
        const failed = outcomes.find((outcome) => outcome.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
        throw new KafkaJSError('The broker answered late (node 1)', { retriable: true });
      },
      stop: async () => {},
    };
    runner.running = true;
    runner.scheduleFetchManager();
  });
}

describe('kafkajs Runner (fixed): the fetch loop retry count with several brokers', () => {
  it.each([true, false])(
    'a broker whose every fetch fails crashes the consumer after `retries`, though another broker answers (healthy first: %s)',
    async (healthyFirst) => {
      const { starts, crash } = await twoBrokers(8, () => true, healthyFirst);
      expect(crash?.name).toBe('KafkaJSNumberOfRetriesExceeded');
      expect(crash?.message).toContain('node 2');
      expect(starts).toBe(RETRY.retries + 1);
    },
  );

  it('a broker that answers between its failures goes on', async () => {
    // Broker 2 fails on odd starts and answers on even ones (those starts fail on broker 1's transient error).
    const { starts, crash } = await twoBrokers(8, (start) => start % 2 === 1, true);
    expect(crash).toBeUndefined();
    expect(starts).toBe(9);
  });
});
