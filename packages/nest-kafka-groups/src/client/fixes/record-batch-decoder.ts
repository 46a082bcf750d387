import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

const TIMESTAMP_TYPE_FLAG_MASK = 0x8;
const TRANSACTIONAL_FLAG_MASK = 0x10;
const CONTROL_FLAG_MASK = 0x20;

interface Decoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readInt16(): number;
  readInt32(): number;
  readVarInt(): number;
  readVarIntBytes(): Buffer | null;
  readArray<T>(reader: (decoder: Decoder) => T): T[];
  readAll(): Buffer;
  slice(size: number): Decoder;
  forward(size: number): void;
}

/** A decoded record batch: its fields, as upstream returns them, and its records. */
interface RecordBatch {
  firstOffset: string;
  firstTimestamp: string;
  partitionLeaderEpoch: number;
  inTransaction: boolean;
  isControlBatch: boolean;
  lastOffsetDelta: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  maxTimestamp: string;
  timestampType: number;
  records: unknown[];
}

/** Largest high word of a 64-bit integer whose value a number holds exactly (2^53 = 2^21 words of 2^32). */
const SAFE_HIGH_WORD = 2 ** 21;

/**
 * A big-endian signed 64-bit integer as the decimal string of kafkajs's `readInt64().toString()`, through a number
 * while the value is a safe integer (without the BigInts kafkajs's reader builds), else through a BigInt.
 */
export function readInt64String(decoder: { buffer: Buffer; offset: number }): string {
  const { buffer, offset } = decoder;
  const high = buffer.readInt32BE(offset);
  decoder.offset = offset + 8;
  if (high >= -SAFE_HIGH_WORD && high < SAFE_HIGH_WORD)
    return String(high * 0x1_0000_0000 + buffer.readUInt32BE(offset + 4));
  return buffer.readBigInt64BE(offset).toString();
}

/**
 * Replaces kafkajs 2.2.4's protocol/recordBatch/v0/decoder.js (the record batch of magic 2). Upstream copies each
 * record into a Buffer view and a Decoder of its own before decoding it: two objects per record that live only
 * while it is decoded. Here a record whose length lies within the batch is decoded where it is, and the reading
 * goes on at its end, whatever its fields took; a record whose length does not fit (a corrupt batch) is decoded
 * from its own view, as upstream does. An uncompressed batch is decoded synchronously (upstream's is an async
 * function: a promise and a turn of the microtask queue per record batch, of which a fetch at a low rate brings
 * about one per message); a compressed one returns a promise, as upstream. The batch's 64-bit fields are read as
 * numbers while they are safe integers (upstream builds four BigInts for each and formats the last), and the
 * batch's fields are one object for the records' context and one for the result (upstream copies them twice).
 * The strings, records and result are upstream's.
 */
export const recordBatchDecoderFix: CarriedFix = {
  module: 'src/protocol/recordBatch/v0/decoder.js',
  sha256: '38cae7fc865f9bc51941353e1f6e9419227a8799ba4efb437199393a4eb94819',
  create: (require: KafkajsRequire) => {
    const DecoderClass = require('../../decoder') as new (buffer: Buffer | null) => Decoder;
    const { KafkaJSPartialMessageError } = require('../../../errors');
    const { lookupCodecByAttributes } = require('../../message/compression');
    const RecordDecoder = require('../record/v0/decoder') as (decoder: Decoder, context: object) => unknown;
    const TimestampTypes = require('../../timestampTypes');

    const decodeRecord = (decoder: Decoder, recordContext: object) => {
      const start = decoder.offset;
      const length = decoder.readVarInt();
      const end = decoder.offset + length;
      if (length < 0 || end > decoder.buffer.length) {
        decoder.offset = start;
        return RecordDecoder(new DecoderClass(decoder.readVarIntBytes()), recordContext);
      }
      const record = RecordDecoder(decoder, recordContext);
      decoder.offset = end;
      return record;
    };

    const decodeCompressed = async (codec: any, recordsDecoder: Decoder, recordContext: object) => {
      const length = recordsDecoder.readInt32();
      if (length <= 0) return [];

      const compressedRecordsBuffer = recordsDecoder.readAll();
      const decompressedRecordBuffer = await codec.decompress(compressedRecordsBuffer);
      const decompressedRecordDecoder = new DecoderClass(decompressedRecordBuffer);
      const records = new Array(length);
      for (let i = 0; i < length; i++) records[i] = decodeRecord(decompressedRecordDecoder, recordContext);
      return records;
    };

    return (fetchDecoder: Decoder): RecordBatch | Promise<RecordBatch> => {
      const firstOffset = readInt64String(fetchDecoder);
      const length = fetchDecoder.readInt32();
      const decoder = fetchDecoder.slice(length);
      fetchDecoder.forward(length);

      const remainingBytes = Buffer.byteLength(decoder.buffer);
      if (remainingBytes < length) {
        throw new KafkaJSPartialMessageError(
          `Tried to decode a partial record batch: remainingBytes(${remainingBytes}) < recordBatchLength(${length})`,
        );
      }

      const partitionLeaderEpoch = decoder.readInt32();
      // The magic byte and the CRC are read to move past them, as upstream (which validates no CRC either).
      const magicByte = decoder.readInt8();
      decoder.readInt32();

      const attributes = decoder.readInt16();
      const lastOffsetDelta = decoder.readInt32();
      const firstTimestamp = readInt64String(decoder);
      const maxTimestamp = readInt64String(decoder);
      const producerId = readInt64String(decoder);
      const producerEpoch = decoder.readInt16();
      const firstSequence = decoder.readInt32();

      const inTransaction = (attributes & TRANSACTIONAL_FLAG_MASK) > 0;
      const isControlBatch = (attributes & CONTROL_FLAG_MASK) > 0;
      const timestampType =
        (attributes & TIMESTAMP_TYPE_FLAG_MASK) > 0
          ? TimestampTypes.LOG_APPEND_TIME
          : TimestampTypes.CREATE_TIME;

      const codec = lookupCodecByAttributes(attributes);

      // What upstream gives each record as its batch context: the batch's fields and the magic byte.
      const recordContext = {
        firstOffset,
        firstTimestamp,
        partitionLeaderEpoch,
        inTransaction,
        isControlBatch,
        lastOffsetDelta,
        producerId,
        producerEpoch,
        firstSequence,
        maxTimestamp,
        timestampType,
        magicByte,
      };
      const batch = (records: unknown[]): RecordBatch => ({
        firstOffset,
        firstTimestamp,
        partitionLeaderEpoch,
        inTransaction,
        isControlBatch,
        lastOffsetDelta,
        producerId,
        producerEpoch,
        firstSequence,
        maxTimestamp,
        timestampType,
        records,
      });

      if (codec) return decodeCompressed(codec, decoder, recordContext).then(batch);
      return batch(decoder.readArray((recordDecoder) => decodeRecord(recordDecoder, recordContext)));
    };
  },
};
