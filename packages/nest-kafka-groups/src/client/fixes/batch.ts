import type { CarriedFix } from '../kafkajs-loader.js';

/** What a decoded record of a fetch response carries that the batch reads. */
interface FetchedMessage {
  offset: string;
  isControlRecord?: boolean;
}

interface PartitionData {
  partition: number;
  highWatermark: string;
  abortedTransactions?: unknown[];
  messages: FetchedMessage[];
}

/**
 * Replaces the constructor of kafkajs 2.2.4's consumer/batch.js (the methods are the released ones, on the same
 * prototype). Upstream drops the records before the fetched offset (a compressed batch starts before it) by parsing
 * every record's offset into a 64-bit BigInt and comparing it with the fetched one, once per record of every fetch.
 * Here two offsets in canonical decimal form are compared as strings (the shorter is the smaller, else the
 * lexical order), which gives the same order without a BigInt; an offset that is not in that form (a negative
 * one, leading zeros), which kafkajs does not produce, is compared as upstream does. The same records are kept in
 * the same order.
 */
export const batchFix: CarriedFix = {
  module: 'src/consumer/batch.js',
  sha256: '04ee8657247441599f200af5871ce6b3c4463abe941b97405502f8f5f683face',
  create: (require, released) => {
    const Released = released() as { prototype: object };
    const Long = require('../utils/long');
    const filterAbortedMessages = require('./filterAbortedMessages');

    const longAtOrAfter = (offset: string, fetched: string): boolean =>
      Long.fromValue(offset).gte(Long.fromValue(fetched));
    const atOrAfter = (offset: string, fetched: string): boolean =>
      canonical(offset)
        ? offset.length > fetched.length || (offset.length === fetched.length && offset >= fetched)
        : longAtOrAfter(offset, fetched);

    function Batch(this: any, topic: string, fetchedOffset: string, partitionData: PartitionData) {
      this.fetchedOffset = fetchedOffset;
      const { abortedTransactions, messages } = partitionData;
      this.topic = topic;
      this.partition = partitionData.partition;
      this.highWatermark = partitionData.highWatermark;
      this.rawMessages = messages;
      const fetched = String(fetchedOffset);
      const within = canonical(fetched) ? atOrAfter : longAtOrAfter;
      this.messagesWithinOffset = messages.filter((message) => within(message.offset, fetched));
      this.messages = (
        filterAbortedMessages({
          messages: this.messagesWithinOffset,
          abortedTransactions,
        }) as FetchedMessage[]
      ).filter((message) => !message.isControlRecord);
    }
    Batch.prototype = Released.prototype;
    return Batch;
  },
};

/** A non-negative integer's decimal digits without a leading zero ("0" itself included). */
function canonical(offset: string): boolean {
  const first = offset.charCodeAt(0);
  return first > 0x30 ? first <= 0x39 : offset.length === 1 && first === 0x30;
}
