import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

/**
 * Replaces kafkajs 2.2.4's protocol/recordBatch/record/v0/decoder.js. Upstream builds the headers object by
 * copying it once per header (quadratic: a record of a few thousand headers blocks the event loop for seconds).
 * Here one object is filled in place, with the same shape: a repeated header becomes an array of its values in
 * order. It has no prototype, so a header named `__proto__` or `constructor` is an ordinary key. The batch's
 * first offset and timestamp (decimal strings) are parsed once per batch, where upstream parses both per record,
 * and while they and the record's deltas are safe integers the record's offset and timestamp are computed as
 * numbers: upstream reads each timestamp delta and adds both deltas in 64-bit BigInt arithmetic, a few BigInts per
 * record, and formats each sum from a BigInt. The strings are the same.
 */
export const recordDecoderFix: CarriedFix = {
  module: 'src/protocol/recordBatch/record/v0/decoder.js',
  sha256: '86d740054c8be29b02873bf2871eb43ba5004af94324610541dbab2d9fabcc65',
  create: (require: KafkajsRequire) => {
    const Long = require('../../../../utils/long');
    const HeaderDecoder = require('../../header/v0/decoder');
    const TimestampTypes = require('../../../timestampTypes');

    // The batch's first offset and timestamp, parsed once per batch rather than once per record: every record of
    // a batch is decoded with the same context object, one after the other. A base that is a safe integer is
    // kept as a number (the common case: adding a delta and formatting it then costs no 64-bit BigInt); a larger
    // one as a Long, as upstream.
    let context: unknown;
    let offsetBase: number | undefined;
    let offsetLong: any;
    let timestampBase: number | undefined;
    let timestampLong: any;

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
        offsetBase = safeInteger(firstOffset);
        offsetLong = undefined;
        timestampBase = safeInteger(firstTimestamp);
        timestampLong = undefined;
      }
      const attributes = decoder.readInt8();

      const timestampDelta = readSmallVarLong(decoder) ?? decoder.readVarLong();
      let timestamp: string;
      if (timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp) timestamp = maxTimestamp;
      else if (typeof timestampDelta === 'number' && timestampBase !== undefined) {
        const sum = timestampBase + timestampDelta;
        timestamp = Number.isSafeInteger(sum)
          ? String(sum)
          : Long.fromValue(firstTimestamp).add(timestampDelta).toString();
      } else timestamp = (timestampLong ??= Long.fromValue(firstTimestamp)).add(timestampDelta).toString();

      const offsetDelta = decoder.readVarInt();
      const offsetSum = offsetBase === undefined ? NaN : offsetBase + offsetDelta;
      const offset = Number.isSafeInteger(offsetSum)
        ? String(offsetSum)
        : (offsetLong ??= Long.fromValue(firstOffset)).add(offsetDelta).toString();

      const key = decoder.readVarIntBytes();
      const value = decoder.readVarIntBytes();
      const headers = readHeaders(decoder, HeaderDecoder);

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

/** A decimal string as a number when it is a safe integer (exact), else undefined. */
function safeInteger(decimal: unknown): number | undefined {
  if (typeof decimal !== 'string') return undefined;
  const value = Number(decimal);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Bytes of a zigzag varint whose value a number holds exactly (7 x 7 = 49 bits). */
const SMALL_VARLONG_BYTES = 7;

/**
 * A zigzag varlong of at most SMALL_VARLONG_BYTES bytes, read as a number without the 64-bit BigInt arithmetic of
 * kafkajs's `readVarLong` (record timestamp deltas are small); undefined, with nothing read, for a longer one.
 */
function readSmallVarLong(decoder: { buffer: Buffer; offset: number }): number | undefined {
  const { buffer } = decoder;
  let at = decoder.offset;
  let result = 0;
  let scale = 1;
  for (let i = 0; i < SMALL_VARLONG_BYTES; i++) {
    const byte = buffer[at++];
    result += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      decoder.offset = at;
      return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    }
    scale *= 0x80;
  }
  return undefined;
}

/** The record's headers, filled into one object as they are read (no array of them first). */
function readHeaders(
  decoder: { readVarInt(): number },
  HeaderDecoder: (decoder: unknown) => { key: string; value: HeaderValue },
): Record<string, HeaderValue | HeaderValue[]> {
  const headers: Record<string, HeaderValue | HeaderValue[]> = Object.create(null);
  const count = decoder.readVarInt();
  for (let i = 0; i < count; i++) addHeader(headers, HeaderDecoder(decoder));
  return headers;
}

type HeaderValue = Buffer | null;

function addHeader(
  headers: Record<string, HeaderValue | HeaderValue[]>,
  { key, value }: { key: string; value: HeaderValue },
): void {
  const existing = headers[key];
  if (existing === undefined) headers[key] = value;
  else if (Array.isArray(existing)) existing.push(value);
  else headers[key] = [existing, value];
}
