import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';

/** The request framing (size, header, payload) against upstream kafkajs 2.2.4's: the same bytes. */
const Encoder = kafkajsInternal('src/protocol/encoder');
const fixed = kafkajsInternal('src/protocol/request.js');
const upstream = createRequire(import.meta.url)('kafkajs/src/protocol/request.js');
const UpstreamEncoder = createRequire(import.meta.url)('kafkajs/src/protocol/encoder.js');

describe('request framing (one encoder sized for the request)', () => {
  it('frames the same bytes as upstream, whatever the client id and payload', async () => {
    const payloads = [0, 1, 254, 497, 498, 502, 511, 512, 1_000, 70_000];
    for (const clientId of ['bench-d', '', 'ü-client-✓', null, undefined, 'x'.repeat(600)])
      for (const length of payloads) {
        const content = Buffer.alloc(length, 7);
        const framed = await Promise.all(
          [
            [fixed, Encoder],
            [upstream, UpstreamEncoder],
          ].map(async ([frame, PayloadEncoder]) => {
            const request = {
              apiKey: 1,
              apiVersion: 11,
              encode: async () => new PayloadEncoder().writeBuffer(content),
            };
            return (await frame({ correlationId: 2_147_483_000, clientId, request })).buffer as Buffer;
          }),
        );
        expect({ clientId, length, bytes: framed[0].toString('hex') }).toEqual({
          clientId,
          length,
          bytes: framed[1].toString('hex'),
        });
      }
  });
});
