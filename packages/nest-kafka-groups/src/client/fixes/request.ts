import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';

/** kafkajs's protocol Encoder, the methods the request framing uses. */
interface Encoder {
  size(): number;
  writeInt16(value: number): Encoder;
  writeInt32(value: number): Encoder;
  writeString(value: string | null | undefined): Encoder;
  writeEncoder(value: Encoder): Encoder;
}

type EncoderClass = new (initialSize?: number) => Encoder;

interface RequestToFrame {
  correlationId: number;
  clientId: string | null | undefined;
  request: { apiKey: number; apiVersion: number; encode(): Promise<Encoder> | Encoder };
}

/** The request header's fixed fields: api key and version (2 bytes each), correlation id (4), client id length (2). */
const HEADER_FIXED_BYTES = 10;
/** The size prefix that frames every request. */
const SIZE_BYTES = 4;

/**
 * Replaces kafkajs 2.2.4's protocol/request.js, which frames every request sent (its size, then the header, then
 * the API's payload). Upstream writes the header and payload into one zero-filled encoder of at least 512 bytes,
 * then copies that into a second one behind the size: two buffers and two copies of the payload per request, every
 * Fetch included. Here the size is known before writing (the header's fields and the payload's size), so the same
 * bytes go into one encoder sized for them, the payload copied once.
 */
export const requestFix: CarriedFix = {
  module: 'src/protocol/request.js',
  sha256: '2270900ca6474026c11957fe71ac586881985460ed2554db22ad8870dcaff634',
  create: (require: KafkajsRequire) => createRequestFraming(require('./encoder') as EncoderClass),
};

export function createRequestFraming(Encoder: EncoderClass) {
  return async ({ correlationId, clientId, request: { apiKey, apiVersion, encode } }: RequestToFrame) => {
    const payload = await encode();
    const size =
      HEADER_FIXED_BYTES + (clientId == null ? 0 : Buffer.byteLength(clientId, 'utf8')) + payload.size();
    return new Encoder(SIZE_BYTES + size)
      .writeInt32(size)
      .writeInt16(apiKey)
      .writeInt16(apiVersion)
      .writeInt32(correlationId)
      .writeString(clientId)
      .writeEncoder(payload);
  };
}
