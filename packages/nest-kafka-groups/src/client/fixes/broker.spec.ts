import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';

/** kafkajs's Broker (the library's instance, fixed, and the installed module as released): its fetch. */
const upstream = createRequire(import.meta.url);
const Released = upstream('kafkajs/src/broker/index.js');
const Fixed = kafkajsInternal('src/broker/index.js');
const { createLogger, LEVELS } = kafkajsInternal('src/loggers/index.js');
const { KafkaJSConnectionClosedError, KafkaJSConnectionError } = kafkajsInternal('src/errors.js');
const quiet = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} });
const FETCH = 1;

/** A connected broker of either class whose connection records what it sends; `maxVersion` of Fetch it accepts. */
function broker(Broker: any, lookup: (versions: object) => unknown, maxVersion: number, failWith?: Error) {
  const sent: Buffer[] = [];
  const destroyed: string[] = [];
  const connectionPool = {
    host: 'localhost',
    port: 9092,
    connectionTimeout: 1000,
    async send({ request }: { request: { encode(): Promise<{ buffer: Buffer }> } }) {
      sent.push((await request.encode()).buffer);
      if (failWith) throw failWith;
      return { responses: [] };
    },
    async destroy() {
      destroyed.push('destroy');
    },
  };
  const instance = new Broker({ connectionPool, logger: quiet, nodeId: 1 });
  const connect = (max: number) =>
    (instance.lookupRequest = lookup({ [FETCH]: { minVersion: 0, maxVersion: max } }));
  connect(maxVersion);
  return { instance, sent, destroyed, connect };
}

const fixedLookup = kafkajsInternal('src/protocol/requests/index.js').lookup;
const releasedLookup = upstream('kafkajs/src/protocol/requests/index.js').lookup;

/** Math.random replaced by the same sequence for each class. */
function seeded() {
  let state = 7;
  return jest.spyOn(Math, 'random').mockImplementation(() => {
    state = (state * 48_271) % 2_147_483_647;
    return state / 2_147_483_647;
  });
}

const partitions = (topic: string, ids: number[]) => ({
  topic,
  partitions: ids.map((partition) => ({
    partition,
    fetchOffset: String(100 + partition),
    maxBytes: 1_048_576,
  })),
});

describe('kafkajs Broker.fetch (the fix in place of src/broker/index.js): the same request as released', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('sends the same bytes, partitions shuffled by the same draws, for one and several topics, and after a reconnect', async () => {
    const fetches = [
      { topics: [partitions('t', [0, 1, 2, 3, 4, 5])], maxWaitTime: 100, minBytes: 1, isolationLevel: 1 },
      { topics: [partitions('t', [0, 2]), partitions('u', [1, 3, 5]), partitions('ü', [7])], rackId: 'r1' },
      { topics: [partitions('t', [4])] },
      { topics: [] },
    ];
    const [fixed, released] = [
      [Fixed, fixedLookup],
      [Released, releasedLookup],
    ].map(([Broker, lookup]) => broker(Broker, lookup, 11));
    for (const member of [fixed, released]) {
      const random = seeded();
      for (const options of fetches) await member.instance.fetch({ replicaId: -1, ...options });
      // A reconnect to a broker that supports Fetch up to v4 only: its builder is looked up again.
      member.connect(4);
      for (const options of fetches) await member.instance.fetch({ replicaId: -1, ...options });
      random.mockRestore();
    }
    expect(fixed.sent.map((bytes) => bytes.toString('hex'))).toEqual(
      released.sent.map((bytes) => bytes.toString('hex')),
    );
    expect(fixed.sent).toHaveLength(8);
  });

  it('a closed connection disconnects the broker before the error goes on; other errors do not; as released', async () => {
    for (const error of [new KafkaJSConnectionClosedError('closed'), new KafkaJSConnectionError('refused')]) {
      const outcomes = await Promise.all(
        [
          [Fixed, fixedLookup],
          [Released, releasedLookup],
        ].map(async ([Broker, lookup]) => {
          const member = broker(Broker, lookup, 11, error);
          const failure = await member.instance
            .fetch({ topics: [partitions('t', [0])] })
            .catch((e: Error) => e);
          return { failure: (failure as Error).name, destroyed: member.destroyed };
        }),
      );
      expect(outcomes[0]).toEqual(outcomes[1]);
    }
  });

  it('a broker not connected yet throws as released', async () => {
    const outcomes = await Promise.all(
      [Fixed, Released].map(async (Broker) => {
        const instance = new Broker({
          connectionPool: { host: 'h', port: 1, connectionTimeout: 1, send: async () => ({}) },
          logger: quiet,
        });
        return String(await instance.fetch({ topics: [partitions('t', [0])] }).catch((e: Error) => e));
      }),
    );
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]).toMatch(/Broker not connected/);
  });
});
