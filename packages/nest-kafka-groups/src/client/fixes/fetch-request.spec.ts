import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';
import { writeInt64 } from './fetch-request.js';

/** The Fetch v11 request encoder against upstream kafkajs 2.2.4's: the same bytes. */
const Encoder = kafkajsInternal('src/protocol/encoder');
const fixed = kafkajsInternal('src/protocol/requests/fetch/v11/request.js');
const upstream = createRequire(import.meta.url)('kafkajs/src/protocol/requests/fetch/v11/request.js');

const bytes = async (request: { encode(): Promise<{ buffer: Buffer }> }) => (await request.encode()).buffer;

describe('Fetch v11 request (one encoder, offsets from numbers while safe)', () => {
  it('encodes the same bytes as upstream', async () => {
    const requests = [
      {
        replicaId: -1,
        maxWaitTime: 100,
        minBytes: 1,
        maxBytes: 10_485_760,
        topics: [
          {
            topic: 'bench-latency-topic',
            partitions: [0, 1, 2, 3, 4, 5].map((partition) => ({
              partition,
              fetchOffset: String(123_456 + partition),
              maxBytes: 1_048_576,
            })),
          },
          {
            topic: 'ü-topic',
            partitions: [
              {
                partition: 0,
                fetchOffset: '9007199254740993',
                maxBytes: 10,
                logStartOffset: '7',
                currentLeaderEpoch: 3,
              },
              { partition: 1, fetchOffset: '-1', maxBytes: 10, logStartOffset: 9_007_199_254_740_991 },
              { partition: 2, fetchOffset: '9223372036854775807', maxBytes: 10 },
              { partition: 3, fetchOffset: '0', maxBytes: 10 },
            ],
          },
        ],
      },
      {
        replicaId: -1,
        maxWaitTime: 0,
        minBytes: 0,
        maxBytes: 1,
        topics: [],
        rackId: 'rack-a',
        isolationLevel: 0,
        sessionId: 5,
        sessionEpoch: 2,
        forgottenTopics: [{ topic: 'gone', partitions: [1, 4] }],
      },
    ];
    for (const request of requests) {
      const ours = fixed(request);
      const theirs = upstream(request);
      expect({ ...ours, encode: undefined }).toEqual({ ...theirs, encode: undefined });
      expect(await bytes(ours)).toEqual(await bytes(theirs));
    }
  });

  it('writes a 64-bit integer as kafkajs does, at and around the safe-integer bounds', () => {
    const values: Array<string | number> = [
      0,
      -1,
      1,
      2 ** 32 - 1,
      2 ** 32,
      -(2 ** 32),
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
      '0',
      '-1',
      '4294967296',
      '999999999999999',
      '-999999999999999',
      '9007199254740991',
      '9007199254740993',
      '-9223372036854775808',
      '9223372036854775807',
      '0012',
    ];
    for (const value of values) {
      const ours = new Encoder();
      ours.writeInt32(7);
      writeInt64(ours, value);
      expect(ours.buffer).toEqual(new Encoder().writeInt32(7).writeInt64(value).buffer);
    }
  });
});
