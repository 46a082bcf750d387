import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { CompressionTypes, kafkajsInternal } from '../kafkajs.js';
import { readArrayMaybeAsync } from './fetch-response.js';

/** The Fetch v11 response decoder against upstream kafkajs 2.2.4's, on responses built with kafkajs's encoders. */
const Long = kafkajsInternal('src/utils/long');
const Encoder = kafkajsInternal('src/protocol/encoder');
const Decoder = kafkajsInternal('src/protocol/decoder');
const { RecordBatch } = kafkajsInternal('src/protocol/recordBatch/v0');
const Record = kafkajsInternal('src/protocol/recordBatch/record/v0');
const fixed = kafkajsInternal('src/protocol/requests/fetch/v11/response.js');
const upstream = createRequire(import.meta.url)('kafkajs/src/protocol/requests/fetch/v11/response.js');

async function recordSet(compression: number, firstOffset: string): Promise<Buffer> {
  const records = ['a', 'b'].map((value, i) =>
    Record({ offsetDelta: i, key: Buffer.from(`k${i}`), value: Buffer.from(value) }),
  );
  const { buffer } = await RecordBatch({
    compression,
    firstOffset: Long.fromString(firstOffset),
    lastOffsetDelta: 1,
    records,
  });
  return buffer;
}

interface PartitionSpec {
  partition: number;
  highWatermark: string;
  logStartOffset?: string;
  aborted?: Array<[string, string]>;
  records?: Buffer;
}

function response(topics: Array<[string, PartitionSpec[]]>): Buffer {
  const encoder = new Encoder().writeInt32(0).writeInt16(0).writeInt32(0).writeInt32(topics.length);
  for (const [topic, partitions] of topics) {
    encoder.writeString(topic).writeInt32(partitions.length);
    for (const p of partitions) {
      encoder
        .writeInt32(p.partition)
        .writeInt16(0)
        .writeInt64(p.highWatermark)
        .writeInt64(p.highWatermark)
        .writeInt64(p.logStartOffset ?? '-1')
        .writeInt32(p.aborted?.length ?? -1);
      for (const [producerId, firstOffset] of p.aborted ?? [])
        encoder.writeInt64(producerId).writeInt64(firstOffset);
      encoder.writeInt32(-1);
      const records = p.records ?? Buffer.alloc(0);
      encoder.writeInt32(records.length).writeBuffer(records);
    }
  }
  return encoder.buffer;
}

const comparable = (decoded: any) =>
  JSON.parse(
    JSON.stringify(decoded, (key, value) =>
      key === 'batchContext' || key === 'headers' ? undefined : value,
    ),
  );

describe('Fetch v11 response (partitions decoded synchronously while their record sets are)', () => {
  it('decodes as upstream: empty partitions, uncompressed and compressed record sets, aborted transactions, offsets past 2^53', async () => {
    const raw = response([
      [
        't1',
        [
          { partition: 0, highWatermark: '0' },
          { partition: 1, highWatermark: '12', records: await recordSet(CompressionTypes.None, '10') },
          {
            partition: 2,
            highWatermark: '9007199254740995',
            logStartOffset: '9007199254740993',
            records: await recordSet(CompressionTypes.GZIP, '9007199254740993'),
          },
          {
            partition: 3,
            highWatermark: '7',
            aborted: [
              ['9223372036854775807', '3'],
              ['-1', '4'],
            ],
            records: await recordSet(CompressionTypes.None, '5'),
          },
        ],
      ],
      ['t2', [{ partition: 0, highWatermark: '2', records: await recordSet(CompressionTypes.None, '0') }]],
    ]);
    const ours = await fixed.decode(raw);
    expect(comparable(ours)).toEqual(comparable(await upstream.decode(raw)));
    expect(ours.responses[0].partitions.map((p: any) => p.messages.map((m: any) => m.offset))).toEqual([
      [],
      ['10', '11'],
      ['9007199254740993', '9007199254740994'],
      ['5', '6'],
    ]);
  });

  it('reads an array synchronously until an item is a promise, then the rest in order, each after the one before', async () => {
    const items = [1, 2, 3, 4];
    const read = () => new Decoder(new Encoder().writeInt32(items.length).buffer);
    const order: string[] = [];
    expect(readArrayMaybeAsync(read(), () => items[order.push('sync') - 1])).toEqual(items);
    order.length = 0;
    let next = 0;
    const mixed = readArrayMaybeAsync(read(), () => {
      const i = next++;
      order.push(`start ${i}`);
      if (i % 2 === 0) return i;
      return new Promise<number>((resolve) => setTimeout(() => (order.push(`end ${i}`), resolve(i)), 5));
    });
    expect(mixed).toBeInstanceOf(Promise);
    expect(await mixed).toEqual([0, 1, 2, 3]);
    expect(order).toEqual(['start 0', 'start 1', 'end 1', 'start 2', 'start 3', 'end 3']);
    expect(readArrayMaybeAsync(new Decoder(new Encoder().writeInt32(-1).buffer), () => 1)).toEqual([]);
  });
});
