import { KafkaBatchDecodeError } from '../../errors/kafka-batch-decode.error.js';
import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

const UNDECODABLE = Symbol('nest-kafka-groups.undecodableBatch');

/** Record batch layout (magic 2): the fields read from a batch that could not be decoded. */
const FIRST_OFFSET = 0;
const ATTRIBUTES = 21;
const CODECS = ['uncompressed', 'gzip', 'snappy', 'lz4', 'zstd'];
const LAST_OFFSET_DELTA = 23;
const FIRST_TIMESTAMP = 27;
const PRODUCER_ID = 43;
const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;
const LENGTH = 8;
const LENGTH_BYTES = 12;

/**
 * Replaces kafkajs 2.2.4's protocol/requests/fetch/v4/decodeMessages.js (the record set decoder of fetch v4 to
 * v11). Upstream, a record batch that cannot be decoded (an unsupported codec, corrupt or oversized compressed
 * data) rejects the whole fetch response: the consumer crashes and restarts on the same batch, and every partition
 * of the member stops for good. Here the failure stays with its partition: the records decoded before it are
 * returned as usual, and when the undecodable batch comes first it is returned as a single stand-in record that
 * carries the error (`undecodableBatchError`), at the batch's last offset, with the batch's raw bytes as its
 * value. The member treats it as a message that failed for good: dead-lettered (so nothing of it is lost, and the
 * partition moves past the batch), or the partition stops when dead letters are off. A record set whose batches
 * are uncompressed is decoded synchronously (upstream's decoder is an async function: a promise for every
 * partition of every fetch, the empty ones included); one with a compressed batch, or of the older message format,
 * gives a promise, as upstream.
 */
export const decodeMessagesFix: CarriedFix = {
  module: 'src/protocol/requests/fetch/v4/decodeMessages.js',
  sha256: 'd9fede59bebf84ee15169d0ecc54df594a11722b6ba8d5db535ed1d8548d4fcc',
  create: (require: KafkajsRequire) => {
    const Decoder = require('../../../decoder');
    const MessageSetDecoder = require('../../../messageSet/decoder');
    const RecordBatchDecoder = require('../../../recordBatch/v0/decoder');
    const { MAGIC_BYTE } = require('../../../recordBatch/v0');
    const Long = require('../../../../utils/long');
    const MAGIC_OFFSET = 16;
    const RECORD_BATCH_OVERHEAD = 49;

    const standIn = (buffer: Buffer, start: number, error: unknown) => {
      const firstOffset = Long.fromValue(buffer.readBigInt64BE(start + FIRST_OFFSET).toString());
      const lastOffset = firstOffset.add(buffer.readInt32BE(start + LAST_OFFSET_DELTA)).toString();
      const end = Math.min(buffer.length, start + LENGTH_BYTES + buffer.readInt32BE(start + LENGTH));
      const where = `(offsets ${firstOffset.toString()} to ${lastOffset})`;
      const attributes = buffer.readInt16BE(start + ATTRIBUTES);
      const codec = CODECS[attributes & 0x07] ?? 'unknown';
      // What kafkajs needs to drop it when it belongs to an aborted transaction, as it would the decoded records.
      const producerId =
        start + PRODUCER_ID + 8 <= buffer.length
          ? buffer.readBigInt64BE(start + PRODUCER_ID).toString()
          : '-1';
      const cause =
        error instanceof KafkaBatchDecodeError
          ? new KafkaBatchDecodeError(error.codec, `${where} ${error.problem}`, error.cause)
          : new KafkaBatchDecodeError(
              codec,
              `${where} cannot be decoded: ${(error as Error).message}`,
              error,
            );
      return {
        magicByte: MAGIC_BYTE,
        attributes: 0,
        timestamp: buffer.readBigInt64BE(start + FIRST_TIMESTAMP).toString(),
        offset: lastOffset,
        key: null,
        value: buffer.subarray(start, end),
        headers: Object.create(null),
        isControlRecord: (attributes & CONTROL) !== 0,
        batchContext: {
          firstOffset: firstOffset.toString(),
          producerId,
          inTransaction: (attributes & TRANSACTIONAL) !== 0,
          isControlBatch: (attributes & CONTROL) !== 0,
        },
        [UNDECODABLE]: cause,
      };
    };

    /**
     * Decodes the record batches from where `messagesDecoder` stands into `records`: synchronously while they are
     * uncompressed (the carried record batch decoder returns a promise only for a compressed one), then by a
     * promise for the rest.
     */
    const decodeBatches = (
      messagesBuffer: Buffer,
      messagesDecoder: any,
      records: unknown[],
    ): unknown[] | Promise<unknown[]> => {
      while (messagesDecoder.canReadBytes(RECORD_BATCH_OVERHEAD)) {
        const start = messagesDecoder.offset;
        let decoded: { records: unknown[] } | Promise<{ records: unknown[] }>;
        try {
          decoded = RecordBatchDecoder(messagesDecoder);
        } catch (e: unknown) {
          return failed(e, records, messagesBuffer, start);
        }
        if (decoded instanceof Promise)
          return decoded.then(
            (recordBatch) => {
              for (const record of recordBatch.records) records.push(record);
              return decodeBatches(messagesBuffer, messagesDecoder, records);
            },
            (e: unknown) => failed(e, records, messagesBuffer, start),
          );
        for (const record of decoded.records) records.push(record);
      }
      return records;
    };

    /** A batch that failed ends the record set: what came before it, or its stand-in when it came first. */
    const failed = (e: any, records: unknown[], messagesBuffer: Buffer, start: number) => {
      // The tail of the record set can be an incomplete batch (the fetch's maxBytes): the next fetch has it.
      if (e?.name === 'KafkaJSPartialMessageError') return records;
      // The batch fails on every fetch: deliver what came before it; next time it comes first.
      if (records.length === 0) records.push(standIn(messagesBuffer, start, e));
      return records;
    };

    // Synchronous unless a batch is compressed or of an older format (a promise then, as upstream's always is).
    return (decoder: any): unknown[] | Promise<unknown[]> => {
      const messagesSize = decoder.readInt32();
      if (messagesSize <= 0 || !decoder.canReadBytes(messagesSize)) return [];

      const messagesBuffer: Buffer = decoder.readBytes(messagesSize);
      const messagesDecoder = new Decoder(messagesBuffer);
      const magicByte = messagesBuffer.subarray(MAGIC_OFFSET).readInt8(0);
      if (magicByte !== MAGIC_BYTE) return MessageSetDecoder(messagesDecoder, messagesSize);

      return decodeBatches(messagesBuffer, messagesDecoder, []);
    };
  },
};

/** The error of a stand-in record for a batch that could not be decoded, once per batch (it comes alone). */
export function undecodableBatchError(messages: readonly object[]): KafkaBatchDecodeError | undefined {
  return messages.length === 1
    ? (messages[0] as { [UNDECODABLE]?: KafkaBatchDecodeError })[UNDECODABLE]
    : undefined;
}
