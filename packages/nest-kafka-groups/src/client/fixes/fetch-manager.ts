import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

/** kafkajs's fetcher (consumer/fetcher.js): fetches from one broker, hands the batches to the worker queue, repeats. */
interface Fetcher {
  start(): Promise<void>;
  stop(): Promise<void>;
  getWorkerQueue(): unknown;
}

type NodeId = string | number;

interface FetchManagerOptions {
  logger: { namespace(name: string): KafkajsLogger };
  getNodeIds: () => NodeId[];
  fetch: (nodeId: NodeId) => Promise<unknown[]>;
  handler: (batch: unknown, metadata: { workerId: number }) => Promise<void>;
  concurrency?: number;
}

interface KafkajsLogger {
  debug(message: string, extra?: Record<string, unknown>): void;
}

/** The kafkajs modules the fetch manager is built from (the library's instance of each). */
export interface FetchManagerInternals {
  createFetcher: (options: {
    nodeId: NodeId;
    workerQueue: unknown;
    partitionAssignments: Map<string, NodeId>;
    fetch: (nodeId: NodeId) => Promise<unknown[]>;
    logger: KafkajsLogger;
  }) => Fetcher;
  KafkaJSNoBrokerAvailableError: new () => Error;
}

/**
 * Replaces kafkajs 2.2.4's consumer/fetchManager.js. Upstream, every fetch first compares the cluster's broker list
 * with the one its fetchers were created for, and on any change throws `KafkaJSFetcherRebalanceError`: the manager
 * then stops every fetcher, waiting for the batches each has in the worker queue, and creates them all again. A
 * broker that dies changes that list two or three times (dropped when its connection closes, listed again by the
 * next metadata until the controller fences it, dropped then), so the partitions of the live brokers stopped with
 * it each time, for as long as the slowest batch, heartbeat or commit of any fetcher took. And one fetcher's error
 * stops them all (released behaviour, kept: errors that reach the manager are the group's, not a broker's).
 *
 * Here a change of the broker list starts a fetcher for each broker that appeared and retires the fetcher of each
 * broker that left (it ends after its current fetch and batches); the other fetchers go on. The partitions of a
 * broker that left are fetched by the fetchers of their new leaders once the metadata names them (each fetch reads
 * the leaders from the metadata). The fetchers share the worker queue and the partition assignments as released, so
 * a partition is still handled by one fetcher at a time.
 */
export const fetchManagerFix: CarriedFix = {
  module: 'src/consumer/fetchManager.js',
  sha256: '9a07c96b6150d654ab47c3fe7f98a6ae9c3fc3fdf340ad8001d69dc25e3131d0',
  create: (require: KafkajsRequire) =>
    createFetchManagerFactory({
      createFetcher: require('./fetcher'),
      KafkaJSNoBrokerAvailableError: require('../errors').KafkaJSNoBrokerAvailableError,
    }),
};

/**
 * Which fetchers to start and which to retire when the cluster lists `current`: `running` are the fetchers whose
 * loop has not ended, `retiring` those of them already told to stop. A broker that is listed again while its old
 * fetcher is still ending gets a new one only once that ended (two fetchers of one broker would share its
 * partition assignments). An empty list is no change (as released: no metadata yet, or every broker dropped).
 */
export function fetcherChanges(
  running: readonly NodeId[],
  retiring: readonly NodeId[],
  current: readonly NodeId[],
): { start: NodeId[]; retire: NodeId[] } {
  if (current.length === 0) return { start: [], retire: [] };
  const listed = new Set(current.map(String));
  const alive = new Set(running.map(String));
  const leaving = new Set(retiring.map(String));
  return {
    start: current.filter((id) => !alive.has(String(id))),
    retire: running.filter((id) => !listed.has(String(id)) && !leaving.has(String(id))),
  };
}

/** A batch waiting for a worker, and how to tell its push that it ended. */
interface QueuedBatch {
  batch: unknown;
  done: (error: unknown, failed: boolean) => void;
}

/**
 * In place of kafkajs 2.2.4's worker queue and workers (consumer/workerQueue.js and worker.js), the same contract:
 * `push(...batches)` queues the batches of one fetch for `concurrency` workers shared by every fetcher, each worker
 * handling one batch at a time in queue order, and settles once every batch it pushed has ended, rejecting with the
 * error of the first of them (in push order) that failed. Released, every push built a promise per batch, started
 * every worker (an async function and its `finally` each, running or not) and waited for `Promise.allSettled`; at a
 * low rate a fetch brings a few small batches and this was a good part of each fetch cycle. Here a push is one
 * promise, and only idle workers start.
 */
export function createWorkerQueue(handler: FetchManagerOptions['handler'], concurrency: number) {
  const queue: QueuedBatch[] = [];
  const metadata = Array.from({ length: Math.max(1, concurrency) }, (_, workerId) => ({ workerId }));
  const busy = metadata.map(() => false);

  const work = async (worker: number): Promise<void> => {
    busy[worker] = true;
    try {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        try {
          await handler(item.batch, metadata[worker]);
        } catch (error) {
          item.done(error, true);
          continue;
        }
        item.done(undefined, false);
      }
    } finally {
      busy[worker] = false;
    }
  };

  const push = (...batches: unknown[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      let left = batches.length;
      let firstFailed = batches.length;
      let failure: unknown;
      const ended = (index: number) => (error: unknown, failed: boolean) => {
        if (failed && index < firstFailed) {
          firstFailed = index;
          failure = error;
        }
        if (--left > 0) return;
        if (firstFailed < batches.length) reject(failure);
        else resolve();
      };
      if (left === 0) return resolve();
      for (let index = 0; index < batches.length; index++)
        queue.push({ batch: batches[index], done: ended(index) });
      for (let worker = 0; worker < busy.length && queue.length > 0; worker++)
        if (!busy[worker]) void work(worker);
    });

  return { push };
}

export function createFetchManagerFactory(internals: FetchManagerInternals) {
  const { createFetcher, KafkaJSNoBrokerAvailableError } = internals;

  return ({ logger: rootLogger, getNodeIds, fetch, handler, concurrency = 1 }: FetchManagerOptions) => {
    const logger = rootLogger.namespace('FetchManager');
    const workerQueue = createWorkerQueue(handler, concurrency);
    let session: FetcherSession | undefined;

    /** The fetchers of one start(): until stop() or the first error a fetcher throws. */
    class FetcherSession {
      readonly fetchers = new Map<string, { nodeId: NodeId; fetcher: Fetcher }>();
      private readonly retiring = new Set<string>();
      private readonly partitionAssignments = new Map<string, NodeId>();
      private stopping = false;
      private failure: { error: unknown } | undefined;
      private endAll!: () => void;
      private readonly ended = new Promise<void>((resolve) => (this.endAll = resolve));

      async run(nodeIds: NodeId[]): Promise<void> {
        logger.debug(`Created ${nodeIds.length} fetchers`, { nodeIds, concurrency });
        // All registered before any starts: a fetcher's first fetch reconciles at once, inside start().
        const created = nodeIds.map((nodeId) => this.create(nodeId));
        for (const key of created) this.begin(key);
        await this.ended;
        if (this.failure !== undefined) throw this.failure.error;
      }

      async stop(): Promise<void> {
        this.stopping = true;
        await Promise.all([...this.fetchers.values()].map(({ fetcher }) => fetcher.stop()));
      }

      private create(nodeId: NodeId): string {
        const key = String(nodeId);
        const fetcher = createFetcher({
          nodeId,
          workerQueue,
          partitionAssignments: this.partitionAssignments,
          fetch: async (id) => {
            this.reconcile();
            return this.retiring.has(key) ? [] : fetch(id);
          },
          logger,
        });
        this.fetchers.set(key, { nodeId, fetcher });
        return key;
      }

      private begin(key: string): void {
        this.fetchers
          .get(key)!
          .fetcher.start()
          .then(
            () => this.onEnd(key),
            (error: unknown) => {
              // As released: an error no fetcher recovered from stops them all and is thrown from start().
              this.failure ??= { error };
              void this.stop();
              this.onEnd(key);
            },
          );
      }

      private onEnd(key: string): void {
        this.fetchers.delete(key);
        this.retiring.delete(key);
        this.reconcile();
        if (this.fetchers.size === 0) this.endAll();
      }

      /**
       * Whether the cluster lists exactly the brokers of the running fetchers (or none), when fetcherChanges would
       * start and retire nothing. Every fetch asks; this answers without the lists and sets that builds.
       */
      private unchanged(current: readonly NodeId[]): boolean {
        if (current.length === 0) return true;
        for (const nodeId of current) if (!this.fetchers.has(String(nodeId))) return false;
        for (const { nodeId } of this.fetchers.values()) if (!current.includes(nodeId)) return false;
        return true;
      }

      /** Starts and retires fetchers to match the cluster's broker list; the others are not touched. */
      private reconcile(): void {
        if (this.stopping) return;
        const current = getNodeIds();
        if (this.unchanged(current)) return;
        const running = [...this.fetchers.values()].map(({ nodeId }) => nodeId);
        const retiring = running.filter((id) => this.retiring.has(String(id)));
        const { start, retire } = fetcherChanges(running, retiring, current);
        for (const nodeId of retire) {
          logger.debug('Broker left the cluster metadata, retiring its fetcher', { nodeId });
          this.retiring.add(String(nodeId));
          // Not awaited: it ends after its current fetch and batches, while the other fetchers go on.
          void this.fetchers.get(String(nodeId))!.fetcher.stop();
        }
        const created = start.map((nodeId) => {
          logger.debug('Broker joined the cluster metadata, starting its fetcher', { nodeId });
          return this.create(nodeId);
        });
        for (const key of created) this.begin(key);
      }
    }

    const start = async (): Promise<void> => {
      logger.debug('Starting...');
      const nodeIds = getNodeIds();
      if (nodeIds.length === 0) throw new KafkaJSNoBrokerAvailableError();
      session = new FetcherSession();
      await session.run(nodeIds);
    };

    const stop = async (): Promise<void> => {
      logger.debug('Stopping fetchers...');
      await session?.stop();
      logger.debug('Stopped fetchers');
    };

    const getFetchers = (): Fetcher[] =>
      [...(session?.fetchers.values() ?? [])].map(({ fetcher }) => fetcher);

    return { start, stop, getFetchers };
  };
}
