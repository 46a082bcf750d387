import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';

const Encoder = kafkajsInternal('src/protocol/encoder');
const fixed = kafkajsInternal('src/protocol/requests/produce/index.js');
const released = createRequire(import.meta.url)('kafkajs/src/protocol/requests/produce/index.js');

const UNKNOWN_TOPIC_OR_PARTITION = 3;

/** A Produce v3 answer: partition 0 of `healthy` appended at offset 7, partition 0 of `gone` refused. */
function answer(): Buffer {
  const encoder = new Encoder().writeInt32(2);
  for (const [topic, errorCode, baseOffset] of [
    ['healthy', 0, 7],
    ['gone', UNKNOWN_TOPIC_OR_PARTITION, -1],
  ] as const) {
    encoder.writeString(topic).writeInt32(1);
    encoder.writeInt32(0).writeInt16(errorCode).writeInt64(baseOffset).writeInt64(-1);
  }
  return encoder.writeInt32(0).buffer;
}

const read = async (produce: any) => {
  const { response } = produce.protocol({ version: 3 })({ acks: -1, timeout: 1000, topicData: [] });
  return response.parse(await response.decode(answer()));
};

describe('the carried produce request: the answer per partition', () => {
  it("keeps each partition's error code in the answer", async () => {
    expect(await read(fixed)).toEqual({
      topics: [
        {
          topicName: 'healthy',
          partitions: [{ partition: 0, errorCode: 0, baseOffset: '7', logAppendTime: '-1' }],
        },
        {
          topicName: 'gone',
          partitions: [
            { partition: 0, errorCode: UNKNOWN_TOPIC_OR_PARTITION, baseOffset: '-1', logAppendTime: '-1' },
          ],
        },
      ],
      throttleTime: 0,
    });
  });

  it('kafkajs 2.2.4 as released throws the first partition error for the whole answer (kept to show the bug)', async () => {
    await expect(read(released)).rejects.toMatchObject({ type: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });

  it('offers the same versions as released', () => {
    expect(fixed.versions).toEqual(released.versions);
  });
});
