import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { CompressionTypes, kafkajsInternal } from '../kafkajs.js';

/** The record decoder against upstream kafkajs 2.2.4's, on record sets built with kafkajs's own encoders. */
const Long = kafkajsInternal('src/utils/long');
const Encoder = kafkajsInternal('src/protocol/encoder');
const Decoder = kafkajsInternal('src/protocol/decoder');
const { RecordBatch } = kafkajsInternal('src/protocol/recordBatch/v0');
const Record = kafkajsInternal('src/protocol/recordBatch/record/v0');
const fixed = kafkajsInternal('src/protocol/requests/fetch/v4/decodeMessages.js');
const upstream = createRequire(import.meta.url)('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js');

interface Decoded {
  offset: string;
  timestamp: string;
  key: Buffer;
  value: Buffer;
  headers: Record<string, unknown>;
}

async function batch(
  firstOffset: string,
  firstTimestamp: string,
  count: number,
  compression: number,
  timestampDelta = (i: number): number | bigint => i * 7,
) {
  const records = Array.from({ length: count }, (_, i) =>
    Record({
      offsetDelta: i,
      timestampDelta: Long.fromValue(timestampDelta(i)),
      key: Buffer.from(`k${firstOffset}-${i}`),
      value: Buffer.from(`v${i}`),
      headers: { h: Buffer.from(String(i)) },
    }),
  );
  const encoded = await RecordBatch({
    compression,
    firstOffset: Long.fromString(firstOffset),
    firstTimestamp: Long.fromString(firstTimestamp),
    maxTimestamp: Long.fromString(firstTimestamp).add((count - 1) * 7),
    lastOffsetDelta: count - 1,
    records,
  });
  return encoded.buffer as Buffer;
}

const recordSet = (bytes: Buffer) =>
  new Decoder(new Encoder().writeInt32(bytes.length).writeBuffer(bytes).buffer);

const comparable = (records: Decoded[]) =>
  records.map(({ offset, timestamp, key, value, headers }) => ({
    offset,
    timestamp,
    key: String(key),
    value: String(value),
    headers: { ...headers },
  }));

describe('record decoder (offsets and timestamps parsed once per batch)', () => {
  it('decodes every record of consecutive batches as upstream does, offsets past 2^53 included', async () => {
    const bytes = Buffer.concat([
      await batch('9007199254740990', '1767225600000', 5, CompressionTypes.None),
      await batch('9007199254740995', '1767225601000', 3, CompressionTypes.GZIP),
      await batch('9007199254740998', '1767225600500', 4, CompressionTypes.None),
    ]);
    const ours = comparable(await fixed(recordSet(bytes)));
    expect(ours).toEqual(comparable(await upstream(recordSet(bytes))));
    expect(ours.map((r) => r.offset)).toEqual([
      '9007199254740990',
      '9007199254740991',
      '9007199254740992',
      '9007199254740993',
      '9007199254740994',
      '9007199254740995',
      '9007199254740996',
      '9007199254740997',
      '9007199254740998',
      '9007199254740999',
      '9007199254741000',
      '9007199254741001',
    ]);
    expect(ours.map((r) => r.timestamp).slice(4, 7)).toEqual([
      '1767225600028',
      '1767225601000',
      '1767225601007',
    ]);
  });

  it('a batch decoded again (the same fetch response read twice) gives the same records', async () => {
    const bytes = await batch('41', '1767225600000', 3, CompressionTypes.None);
    const first = comparable(await fixed(recordSet(bytes)));
    expect(comparable(await fixed(recordSet(bytes)))).toEqual(first);
    expect(first.map((r) => r.offset)).toEqual(['41', '42', '43']);
  });

  it('timestamp deltas that are negative, or too long for a number (read as upstream does), and no timestamp', async () => {
    const bytes = Buffer.concat([
      await batch('0', '1767225600000', 4, CompressionTypes.None, (i) => -i * 1000),
      // A delta of 2^56 takes 9 varint bytes: past the numeric reader, decoded as upstream.
      await batch('4', '-1', 3, CompressionTypes.None, (i) => (i === 1 ? 2n ** 56n : BigInt(i))),
      await batch('7', '9007199254740000', 2, CompressionTypes.None, (i) => i * 2000),
    ]);
    const ours = comparable(await fixed(recordSet(bytes)));
    expect(ours).toEqual(comparable(await upstream(recordSet(bytes))));
    expect(ours.map((r) => r.timestamp)).toEqual([
      '1767225600000',
      '1767225599000',
      '1767225598000',
      '1767225597000',
      '-1',
      '72057594037927935',
      '1',
      '9007199254740000',
      '9007199254742000',
    ]);
  });

  it('a record longer than its fields (bytes a later format may add) is read to its end, as upstream does', async () => {
    const records = [0, 1, 2].map((i) => {
      const encoded = Record({
        offsetDelta: i,
        timestampDelta: Long.fromValue(i),
        key: Buffer.from(`k${i}`),
        value: Buffer.from(`v${i}`),
        headers: { h: Buffer.from(String(i)) },
      }).buffer as Buffer;
      const decoder = new Decoder(encoded);
      const length = decoder.readVarInt();
      const body = encoded.subarray(decoder.offset);
      return new Encoder()
        .writeVarInt(length + 3)
        .writeBuffer(body)
        .writeBuffer(Buffer.from([1, 2, 3]));
    });
    const encoded = await RecordBatch({
      firstOffset: Long.fromString('100'),
      firstTimestamp: Long.fromString('1767225600000'),
      maxTimestamp: Long.fromString('1767225600002'),
      lastOffsetDelta: 2,
      records,
    });
    const bytes = encoded.buffer as Buffer;
    const ours = comparable(await fixed(recordSet(bytes)));
    expect(ours).toEqual(comparable(await upstream(recordSet(bytes))));
    expect(ours.map((r) => [r.offset, r.key, r.value])).toEqual([
      ['100', 'k0', 'v0'],
      ['101', 'k1', 'v1'],
      ['102', 'k2', 'v2'],
    ]);
  });
});
