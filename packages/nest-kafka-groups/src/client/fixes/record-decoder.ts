import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

/**
 * Replaces kafkajs 2.2.4's protocol/recordBatch/record/v0/decoder.js. Upstream builds the headers object by
 * copying it once per header (quadratic: a record of a few thousand headers blocks the event loop for seconds).
 * Here one object is filled in place, with the same shape: a repeated header becomes an array of its values in
 * order. It has no prototype, so a header named `__proto__` or `constructor` is an ordinary key. The batch's
 * first offset and timestamp (decimal strings) are parsed once per batch, where upstream parses both per record.
 */
export const recordDecoderFix: CarriedFix = {
  module: 'src/protocol/recordBatch/record/v0/decoder.js',
  sha256: '86d740054c8be29b02873bf2871eb43ba5004af94324610541dbab2d9fabcc65',
  create: (require: KafkajsRequire) => {
    const Long = require('../../../../utils/long');
    const HeaderDecoder = require('../../header/v0/decoder');
    const TimestampTypes = require('../../../timestampTypes');

    // The batch's first offset and timestamp, parsed once per batch rather than once per record: every record of
    // a batch is decoded with the same context object, one after the other.
    let context: unknown;
    let offsetBase: any;
    let timestampBase: any;

    return (decoder: any, batchContext: any = {}) => {
      const {
        firstOffset,
        firstTimestamp,
        magicByte,
        isControlBatch = false,
        timestampType,
        maxTimestamp,
      } = batchContext;
      if (batchContext !== context) {
        context = batchContext;
        offsetBase = undefined;
        timestampBase = undefined;
      }
      const attributes = decoder.readInt8();

      const timestampDelta = decoder.readVarLong();
      const timestamp =
        timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp
          ? maxTimestamp
          : (timestampBase ??= Long.fromValue(firstTimestamp)).add(timestampDelta).toString();

      const offsetDelta = decoder.readVarInt();
      const offset = (offsetBase ??= Long.fromValue(firstOffset)).add(offsetDelta).toString();

      const key = decoder.readVarIntBytes();
      const value = decoder.readVarIntBytes();
      const headers = decodeHeaders(decoder.readVarIntArray(HeaderDecoder));

      return {
        magicByte,
        attributes,
        timestamp,
        offset,
        key,
        value,
        headers,
        isControlRecord: isControlBatch,
        batchContext,
      };
    };
  },
};

type HeaderValue = Buffer | null;

export function decodeHeaders(
  entries: ReadonlyArray<{ key: string; value: HeaderValue }>,
): Record<string, HeaderValue | HeaderValue[]> {
  const headers: Record<string, HeaderValue | HeaderValue[]> = Object.create(null);
  for (const { key, value } of entries) {
    const existing = headers[key];
    if (existing === undefined) headers[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[key] = [existing, value];
  }
  return headers;
}
