import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';

/** The record encoder against upstream kafkajs 2.2.4's, read back with the library's own record decoder. */
const Record = kafkajsInternal('src/protocol/recordBatch/record/v0');
const Decoder = kafkajsInternal('src/protocol/decoder');
const decodeRecord = kafkajsInternal('src/protocol/recordBatch/record/v0/decoder.js');
const upstream = createRequire(import.meta.url)('kafkajs/src/protocol/recordBatch/record/v0');

const record = (headers: Record<string, unknown>) => ({
  offsetDelta: 3,
  timestampDelta: 7,
  key: Buffer.from([0xff, 0x00, 0xfe]),
  value: null,
  headers,
});

function roundTrip(encoded: { buffer: Buffer }) {
  const decoder = new Decoder(encoded.buffer);
  const length = decoder.readVarInt();
  expect(decoder.offset + length).toBe(encoded.buffer.length);
  return decodeRecord(decoder, { firstOffset: '10', firstTimestamp: '1000', magicByte: 2 });
}

describe('record encoder', () => {
  it('writes a null header value (alone and among repeated values) as length -1, where upstream throws', () => {
    const headers = {
      trace: null,
      origin: Buffer.from('java'),
      dup: [Buffer.from('1'), null, Buffer.from('3')],
    };
    expect(() => upstream(record(headers))).toThrow('Received null');
    const decoded = roundTrip(Record(record(headers)));
    expect(decoded.offset).toBe('13');
    expect(decoded.key).toEqual(Buffer.from([0xff, 0x00, 0xfe]));
    expect(decoded.value).toBeNull();
    expect({ ...decoded.headers }).toEqual({
      trace: null,
      origin: Buffer.from('java'),
      dup: [Buffer.from('1'), null, Buffer.from('3')],
    });
  });

  it('encodes records without null header values byte for byte as upstream', () => {
    const headers = { a: Buffer.from([0x80, 0x81]), b: 'text', c: [Buffer.from('x'), 'y'], empty: '' };
    expect(Record(record(headers)).buffer).toEqual(upstream(record(headers)).buffer);
    expect(Record(record({})).buffer).toEqual(upstream(record({})).buffer);
  });
});
