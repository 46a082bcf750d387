import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

interface Encoder {
  buf: Buffer;
  offset: number;
  ensureAvailable(length: number): void;
  writeInt8(value: number): Encoder;
  writeInt32(value: number): Encoder;
  writeInt64(value: string | number): Encoder;
  writeString(value: string | null): Encoder;
  writeArray(values: unknown[]): Encoder;
}

interface FetchPartition {
  partition: number;
  currentLeaderEpoch?: number;
  fetchOffset: string;
  logStartOffset?: string | number;
  maxBytes: number;
}

interface FetchRequest {
  replicaId: number;
  maxWaitTime: number;
  minBytes: number;
  maxBytes: number;
  topics: Array<{ topic: string; partitions: FetchPartition[] }>;
  rackId?: string;
  isolationLevel?: number;
  sessionId?: number;
  sessionEpoch?: number;
  forgottenTopics?: Array<{ topic: string; partitions: number[] }>;
}

/** Decimal strings of at most 15 digits: safe integers, which a number holds exactly. */
const SHORT_DECIMAL = /^-?\d{1,15}$/;
const WORD = 0x1_0000_0000;

/**
 * kafkajs's `writeInt64` (a Long built from a BigInt for every value) for a number or short decimal string, written
 * from the number; any other value goes to kafkajs's. The same eight bytes.
 */
export function writeInt64(encoder: Encoder, value: string | number): void {
  const exact = typeof value === 'number' ? Number.isSafeInteger(value) : SHORT_DECIMAL.test(value);
  if (!exact) {
    encoder.writeInt64(value);
    return;
  }
  const number = Number(value);
  const high = Math.floor(number / WORD);
  encoder.ensureAvailable(8);
  encoder.buf.writeInt32BE(high, encoder.offset);
  encoder.buf.writeUInt32BE(number - high * WORD, encoder.offset + 4);
  encoder.offset += 8;
}

/**
 * Replaces kafkajs 2.2.4's protocol/requests/fetch/v11/request.js (the Fetch request kafkajs sends to Kafka 2.3 and
 * later). Upstream encodes each topic and each partition into an Encoder of its own (a zero-filled 512-byte buffer
 * each, then copied into the request's) and each 64-bit offset through a BigInt, on every fetch. Here the request is
 * written into one Encoder, its offsets from numbers while they are safe integers. The same bytes.
 */
export const fetchRequestFix: CarriedFix = {
  module: 'src/protocol/requests/fetch/v11/request.js',
  sha256: 'e652bb05ffab315d19dd3e75ac878d49af47182b7600f419a8d5b4633976a5cd',
  create: (require: KafkajsRequire) => {
    const EncoderClass = require('../../../encoder') as new () => Encoder;
    const { Fetch: apiKey } = require('../../apiKeys');
    const ISOLATION_LEVEL = require('../../../isolationLevel');

    return ({
      replicaId,
      maxWaitTime,
      minBytes,
      maxBytes,
      topics,
      rackId = '',
      isolationLevel = ISOLATION_LEVEL.READ_COMMITTED,
      sessionId = 0,
      sessionEpoch = -1,
      forgottenTopics = [],
    }: FetchRequest) => ({
      apiKey,
      apiVersion: 11,
      apiName: 'Fetch',
      encode: async () => {
        const encoder = new EncoderClass()
          .writeInt32(replicaId)
          .writeInt32(maxWaitTime)
          .writeInt32(minBytes)
          .writeInt32(maxBytes)
          .writeInt8(isolationLevel)
          .writeInt32(sessionId)
          .writeInt32(sessionEpoch)
          .writeInt32(topics.length);
        for (const { topic, partitions } of topics) {
          encoder.writeString(topic).writeInt32(partitions.length);
          for (const {
            partition,
            currentLeaderEpoch = -1,
            fetchOffset,
            logStartOffset = -1,
            maxBytes: most,
          } of partitions) {
            encoder.writeInt32(partition).writeInt32(currentLeaderEpoch);
            writeInt64(encoder, fetchOffset);
            writeInt64(encoder, logStartOffset);
            encoder.writeInt32(most);
          }
        }
        encoder.writeInt32(forgottenTopics.length);
        for (const { topic, partitions } of forgottenTopics)
          encoder.writeString(topic).writeArray(partitions);
        return encoder.writeString(rackId);
      },
    });
  },
};
