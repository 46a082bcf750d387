import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { CompressionTypes, kafkajsInternal } from '../kafkajs.js';
import { readInt64String } from './record-batch-decoder.js';

/** The record batch decoder against upstream kafkajs 2.2.4's, on batches built with kafkajs's own encoders. */
const Long = kafkajsInternal('src/utils/long');
const Encoder = kafkajsInternal('src/protocol/encoder');
const Decoder = kafkajsInternal('src/protocol/decoder');
const { RecordBatch } = kafkajsInternal('src/protocol/recordBatch/v0');
const Record = kafkajsInternal('src/protocol/recordBatch/record/v0');
const fixed = kafkajsInternal('src/protocol/recordBatch/v0/decoder.js');
const upstream = createRequire(import.meta.url)('kafkajs/src/protocol/recordBatch/v0/decoder.js');

async function batch(compression: number, producerId: string, firstOffset: string): Promise<Buffer> {
  const records = ['a', 'b', 'c'].map((value, i) =>
    Record({ offsetDelta: i, key: Buffer.from(`k${i}`), value: Buffer.from(value), headers: { h: value } }),
  );
  const encoded = await RecordBatch({
    compression,
    firstOffset: Long.fromString(firstOffset),
    firstTimestamp: Long.fromString('1767225600000'),
    maxTimestamp: Long.fromString('1767225600014'),
    lastOffsetDelta: records.length - 1,
    producerId: Long.fromString(producerId),
    records,
  });
  return encoded.buffer;
}

/** The records without their shared batch context (compared apart) and with plain header objects. */
const withoutContext = (records: Array<{ batchContext: object; headers: object }>) =>
  records.map(({ batchContext: _context, headers, ...record }) => ({ ...record, headers: { ...headers } }));

describe('record batch decoder (synchronous when uncompressed, 64-bit fields as numbers)', () => {
  const cases: Array<[string, number, string, string]> = [
    ['uncompressed', CompressionTypes.None, '-1', '42'],
    ['uncompressed, fields past 2^53', CompressionTypes.None, '9223372036854775807', '9007199254740993'],
    ['gzip', CompressionTypes.GZIP, '123456789012', '7'],
  ];
  it.each(cases)(
    '%s: the fields, records and batch context of upstream',
    async (_, codec, producerId, first) => {
      const bytes = await batch(codec, producerId, first);
      const ours = fixed(new Decoder(bytes));
      // A promise only when there is something to decompress.
      expect(ours instanceof Promise).toBe(codec !== CompressionTypes.None);
      const { records, ...fields } = await ours;
      const { records: upstreamRecords, ...upstreamFields } = await upstream(new Decoder(bytes));
      expect(fields).toEqual(upstreamFields);
      expect(withoutContext(records)).toEqual(withoutContext(upstreamRecords));
      expect(records[0].batchContext).toEqual(upstreamRecords[0].batchContext);
      expect(records[0].batchContext).toBe(records[2].batchContext);
    },
  );

  it('reads a 64-bit integer as the decimal string of kafkajs, at and around the safe-integer bounds', () => {
    const values = [
      0n,
      1n,
      -1n,
      2n ** 32n - 1n,
      2n ** 32n,
      -(2n ** 32n),
      2n ** 53n - 1n,
      2n ** 53n,
      2n ** 53n + 1n,
      -(2n ** 53n),
      -(2n ** 53n) - 1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
    ];
    for (const value of values) {
      const bytes = new Encoder().writeInt64(value.toString()).buffer as Buffer;
      const decoder = new Decoder(Buffer.concat([Buffer.from([9]), bytes]));
      decoder.offset = 1;
      expect(readInt64String(decoder)).toBe(new Decoder(bytes).readInt64().toString());
      expect(readInt64String(new Decoder(bytes))).toBe(value.toString());
      expect(decoder.offset).toBe(9);
    }
  });
});
