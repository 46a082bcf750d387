import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';
import { readInt64String } from './record-batch-decoder.js';

interface Decoder {
  buffer: Buffer;
  offset: number;
  readInt16(): number;
  readInt32(): number;
  readString(): string;
  readArray<T>(reader: (decoder: Decoder) => T): T[];
}

/**
 * An array of kafkajs's protocol (its length, then each item) read synchronously while `reader` returns values,
 * and by a promise for the rest once it returns one: the items in order, each read after the one before it
 * settled, as kafkajs's `readArrayAsync` (which awaits every item, and gives [] for a length of -1).
 */
export function readArrayMaybeAsync<T>(
  decoder: Decoder,
  reader: (decoder: Decoder) => T | Promise<T>,
): T[] | Promise<T[]> {
  const length = decoder.readInt32();
  if (length === -1) return [];
  const array = new Array<T>(length);
  for (let i = 0; i < length; i++) {
    const item = reader(decoder);
    if (item instanceof Promise) return readRest(decoder, reader, array, i, item);
    array[i] = item;
  }
  return array;
}

async function readRest<T>(
  decoder: Decoder,
  reader: (decoder: Decoder) => T | Promise<T>,
  array: T[],
  index: number,
  pending: Promise<T>,
): Promise<T[]> {
  array[index] = await pending;
  for (let i = index + 1; i < array.length; i++) array[i] = await reader(decoder);
  return array;
}

/**
 * Replaces kafkajs 2.2.4's protocol/requests/fetch/v11/response.js (the Fetch response kafkajs uses with Kafka 2.3
 * and later). Upstream decodes each topic and each partition of a fetch response with an async function, every
 * partition asked for included (a fetch at a low rate returns mostly partitions with nothing new), and reads each
 * partition's three 64-bit offsets through BigInts. Here the topics and partitions are read synchronously while
 * their record sets are (see the carried decodeMessages: uncompressed batches), and by promises, in order, from the
 * first that is not; the 64-bit fields are read as numbers while they are safe integers. The decoded response is
 * upstream's, field for field, and `decode` still returns a promise; `parse` is upstream's.
 */
export const fetchResponseFix: CarriedFix = {
  module: 'src/protocol/requests/fetch/v11/response.js',
  sha256: '9cb972647500104e7d616edcb4856119f4a716664b64bbb1ee96c8f4f0a83eb6',
  create: (require: KafkajsRequire) => {
    const DecoderClass = require('../../../decoder') as new (buffer: Buffer) => Decoder;
    const { parse } = require('../v1/response');
    const decodeMessages = require('../v4/decodeMessages') as (
      decoder: Decoder,
    ) => unknown[] | Promise<unknown[]>;

    const decodeAbortedTransactions = (decoder: Decoder) => ({
      producerId: readInt64String(decoder),
      firstOffset: readInt64String(decoder),
    });

    const decodePartition = (decoder: Decoder) => {
      const partition = decoder.readInt32();
      const errorCode = decoder.readInt16();
      const highWatermark = readInt64String(decoder);
      const lastStableOffset = readInt64String(decoder);
      const lastStartOffset = readInt64String(decoder);
      const abortedTransactions = decoder.readArray(decodeAbortedTransactions);
      const preferredReadReplica = decoder.readInt32();
      const partitionData = (messages: unknown[]) => ({
        partition,
        errorCode,
        highWatermark,
        lastStableOffset,
        lastStartOffset,
        abortedTransactions,
        preferredReadReplica,
        messages,
      });
      const messages = decodeMessages(decoder);
      return messages instanceof Promise ? messages.then(partitionData) : partitionData(messages);
    };

    const decodeResponse = (decoder: Decoder) => {
      const topicName = decoder.readString();
      const partitions = readArrayMaybeAsync(decoder, decodePartition);
      return partitions instanceof Promise
        ? partitions.then((decoded) => ({ topicName, partitions: decoded }))
        : { topicName, partitions };
    };

    const decode = async (rawData: Buffer) => {
      const decoder = new DecoderClass(rawData);
      const clientSideThrottleTime = decoder.readInt32();
      const errorCode = decoder.readInt16();
      const sessionId = decoder.readInt32();
      const read = readArrayMaybeAsync(decoder, decodeResponse);
      const responses = read instanceof Promise ? await read : read;

      // As upstream: a `throttleTime` of 0 (the broker did not throttle this request; a `clientSideThrottleTime`
      // above 0 asks the client to throttle itself).
      return {
        throttleTime: 0,
        clientSideThrottleTime,
        errorCode,
        sessionId,
        responses,
      };
    };

    return { decode, parse };
  },
};
