import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

type BrokerClass = new (options: any) => any;

/** A topic of a fetch as the consumer group asks for it: the partitions are kafkajs's request entries. */
interface FetchTopic {
  topic: string;
  partitions: unknown[];
}

interface FetchOptions {
  replicaId?: number;
  isolationLevel?: number;
  maxWaitTime?: number;
  minBytes?: number;
  maxBytes?: number;
  topics: FetchTopic[];
  rackId?: string;
}

interface BrokerInternals {
  /** kafkajs's request definitions (protocol/requests) and the Fetch API key. */
  Fetch: unknown;
  fetchApiKey: number;
}

/**
 * Replaces kafkajs 2.2.4's broker/index.js by a subclass of the released Broker, for its `fetch`, which every
 * fetch cycle of a consumer calls. Upstream, each call looks up the Fetch request version again (a list of
 * versions and a spread each time), copies every topic-partition into a pair object, shuffles a copy of that list
 * (KIP-74: no partition always first in the response), merges runs of one topic back into request entries, and
 * sends through one more async method. Here the version's request builder is looked up once per connection (the
 * lookup kafkajs builds at each connect), the shuffle is the same Fisher-Yates over the same list (the same
 * `Math.random` draws, so the same order), run in place over two flat arrays, and the send and its handling of a
 * closed connection are the released ones, one async layer less. Every other method is the released one.
 */
export const brokerFix: CarriedFix = {
  module: 'src/broker/index.js',
  sha256: '9cbea8898528c439c213080f99d86974460114f81b5034c49aeb593a0337ca90',
  create: (require: KafkajsRequire, released: () => any) =>
    createBroker(released() as BrokerClass, {
      Fetch: (require('../protocol/requests') as { requests: { Fetch: unknown } }).requests.Fetch,
      fetchApiKey: (require('../protocol/requests/apiKeys') as { Fetch: number }).Fetch,
    }),
};

export function createBroker(Released: BrokerClass, internals: BrokerInternals): BrokerClass {
  const { Fetch, fetchApiKey } = internals;

  return class Broker extends Released {
    /** The Fetch request builder of the current connection's versions, and the lookup it came from. */
    fetchRequest: ((request: object) => unknown) | undefined;
    fetchRequestLookup: unknown;

    async fetch({
      replicaId,
      isolationLevel,
      maxWaitTime = 5000,
      minBytes = 1,
      maxBytes = 10485760,
      topics,
      rackId = '',
    }: FetchOptions): Promise<unknown> {
      if (this.fetchRequestLookup !== this.lookupRequest) {
        this.fetchRequest = this.lookupRequest(fetchApiKey, Fetch) as (request: object) => unknown;
        this.fetchRequestLookup = this.lookupRequest;
      }

      const topicOf: string[] = [];
      const partitionOf: unknown[] = [];
      for (const { topic, partitions } of topics)
        for (const partition of partitions) {
          topicOf.push(topic);
          partitionOf.push(partition);
        }
      // kafkajs's utils/shuffle, in place over both arrays.
      for (let i = topicOf.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        const topic = topicOf[i];
        topicOf[i] = topicOf[j];
        topicOf[j] = topic;
        const partition = partitionOf[i];
        partitionOf[i] = partitionOf[j];
        partitionOf[j] = partition;
      }
      const consolidated: FetchTopic[] = [];
      for (let i = 0; i < topicOf.length; i++) {
        const last = consolidated[consolidated.length - 1];
        if (last !== undefined && last.topic === topicOf[i]) last.partitions.push(partitionOf[i]);
        else consolidated.push({ topic: topicOf[i], partitions: [partitionOf[i]] });
      }

      const request = this.fetchRequest!({
        replicaId,
        isolationLevel,
        maxWaitTime,
        minBytes,
        maxBytes,
        topics: consolidated,
        rackId,
      });
      try {
        return await this.connectionPool.send(request);
      } catch (error) {
        if ((error as { name?: string }).name === 'KafkaJSConnectionClosedError') await this.disconnect();
        throw error;
      }
    }
  };
}
