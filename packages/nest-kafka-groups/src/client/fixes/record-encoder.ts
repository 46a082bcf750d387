import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

/**
 * Replaces kafkajs 2.2.4's protocol/recordBatch/record/v0/index.js (the record encoder). Upstream sizes each header
 * value with `Buffer.byteLength(value)` before checking for null, so a header whose value is null (Java's
 * `new RecordHeader(name, null)`, which kafkajs itself decodes as null) throws a TypeError: such a record could
 * never be dead-lettered or sent to a retry topic, and its partition waited on the write for ever. Here a null value
 * is sized as the -1 length the encoder writes for it; everything else is encoded as upstream does.
 */
export const recordEncoderFix: CarriedFix = {
  module: 'src/protocol/recordBatch/record/v0/index.js',
  sha256: 'ffbc628c1f35f5de8ba798165616b1009d9af1c27ca959999a10e6e3c18f8215',
  create: (require: KafkajsRequire) => {
    const Encoder = require('../../../encoder');
    const Header = require('../../header/v0');

    // The value is sized as the encoder writes it: a null (or undefined) value as the length -1.
    const sizeOfHeaders = (headers: { key: string; value: unknown }[]): number => {
      let size = Encoder.sizeOfVarInt(headers.length);
      for (const { key, value } of headers) {
        const keySize = Buffer.byteLength(key);
        size += Encoder.sizeOfVarInt(keySize) + keySize + Encoder.sizeOfVarIntBytes(value);
      }
      return size;
    };

    return ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }: any) => {
      const headersArray = Object.keys(headers).flatMap((headerKey) =>
        !Array.isArray(headers[headerKey])
          ? [{ key: headerKey, value: headers[headerKey] }]
          : headers[headerKey].map((headerValue: unknown) => ({ key: headerKey, value: headerValue })),
      );
      const sizeOfBody =
        1 + // the attributes byte
        Encoder.sizeOfVarLong(timestampDelta) +
        Encoder.sizeOfVarInt(offsetDelta) +
        Encoder.sizeOfVarIntBytes(key) +
        Encoder.sizeOfVarIntBytes(value) +
        sizeOfHeaders(headersArray);
      return new Encoder()
        .writeVarInt(sizeOfBody)
        .writeInt8(0)
        .writeVarLong(timestampDelta)
        .writeVarInt(offsetDelta)
        .writeVarIntBytes(key)
        .writeVarIntBytes(value)
        .writeVarIntArray(headersArray.map(Header));
    };
  },
};
