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
  readInt64(): { toString(): string };
  readVarInt(): number;
  readVarIntBytes(): Buffer | null;
  readArray<T>(reader: (decoder: Decoder) => T): T[];
  readAll(): Buffer;
  slice(size: number): Decoder;
  forward(size: number): void;
}

/**
 * Replaces kafkajs 2.2.4's protocol/recordBatch/v0/decoder.js (the record batch of magic 2). Upstream copies each
 * record into a Buffer view and a Decoder of its own before decoding it: two objects per record that live only
 * while it is decoded. Here a record whose length lies within the batch is decoded where it is, and the reading
 * goes on at its end, whatever its fields took; a record whose length does not fit (a corrupt batch) is decoded
 * from its own view, as upstream does. Everything else is upstream's, line for line.
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

    const decodeRecords = async (codec: any, recordsDecoder: Decoder, recordContext: object) => {
      if (!codec) return recordsDecoder.readArray((decoder) => decodeRecord(decoder, recordContext));

      const length = recordsDecoder.readInt32();
      if (length <= 0) return [];

      const compressedRecordsBuffer = recordsDecoder.readAll();
      const decompressedRecordBuffer = await codec.decompress(compressedRecordsBuffer);
      const decompressedRecordDecoder = new DecoderClass(decompressedRecordBuffer);
      const records = new Array(length);
      for (let i = 0; i < length; i++) records[i] = decodeRecord(decompressedRecordDecoder, recordContext);
      return records;
    };

    return async (fetchDecoder: Decoder) => {
      const firstOffset = fetchDecoder.readInt64().toString();
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
      const firstTimestamp = decoder.readInt64().toString();
      const maxTimestamp = decoder.readInt64().toString();
      const producerId = decoder.readInt64().toString();
      const producerEpoch = decoder.readInt16();
      const firstSequence = decoder.readInt32();

      const inTransaction = (attributes & TRANSACTIONAL_FLAG_MASK) > 0;
      const isControlBatch = (attributes & CONTROL_FLAG_MASK) > 0;
      const timestampType =
        (attributes & TIMESTAMP_TYPE_FLAG_MASK) > 0
          ? TimestampTypes.LOG_APPEND_TIME
          : TimestampTypes.CREATE_TIME;

      const codec = lookupCodecByAttributes(attributes);

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
      };

      const records = await decodeRecords(codec, decoder, { ...recordContext, magicByte });

      return {
        ...recordContext,
        records,
      };
    };
  },
};
