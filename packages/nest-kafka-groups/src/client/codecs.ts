import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { KafkaBatchDecodeError } from '../errors/kafka-batch-decode.error.js';
import { KafkaConfigurationError } from '../errors/kafka-configuration.error.js';

const require = createRequire(import.meta.url);
// Pure JavaScript, no install step: the same on every platform and Node version.
const snappy: {
  compress(input: Buffer): Uint8Array;
  uncompress(input: Buffer, maxLength: number): Uint8Array;
} = require('snappyjs');
const lz4: {
  decompressFrame(input: Buffer, output: Uint8Array): number;
  compressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    sIndex: number,
    sLength: number,
    hashTable: Uint32Array,
  ): number;
  compressBound(n: number): number;
} = require('lz4js');
const lz4Hash: {
  hash(seed: number, data: Uint8Array, index: number, length: number): number;
} = require('lz4js/xxh32.js');

/** The codecs a producer can use: kafkajs's names, lower case. */
export type KafkaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Default bound on one record batch after decompression (a batch is at most a few MB compressed). */
export const DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024;

interface Encoder {
  buffer: Buffer;
}

interface Codec {
  compress(encoder: Encoder): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** Node 22.15+ (and 23.8+) has zstd in zlib; Node 20 does not. */
const zstdZlib = zlib as unknown as {
  zstdCompress?: (input: Buffer, callback: (error: Error | null, result: Buffer) => void) => void;
};

/** Whether this Node.js can produce zstd batches (node:zlib's zstd, Node 22.15+); consuming zstd works everywhere. */
export const zstdCompressionAvailable = typeof zstdZlib.zstdCompress === 'function';

const gunzip = promisify(zlib.unzip) as (input: Buffer, options: zlib.ZlibOptions) => Promise<Buffer>;
const gzip = promisify(zlib.gzip) as (input: Buffer) => Promise<Buffer>;

/**
 * The codecs the library registers on its kafkajs instance (kafkajs ships gzip only and throws
 * KafkaJSNotImplemented for the others, which crashed the consumer on every fetch of such a batch). Every
 * decompression is bounded by `bound.maxBytes`, read at each call: over it, or on corrupt input, it throws
 * KafkaBatchDecodeError.
 */
export function createCodecs(bound: {
  readonly maxBytes: number;
}): Record<'gzip' | 'snappy' | 'lz4' | 'zstd', Codec> {
  const tooLarge = (codec: string, size?: number) =>
    new KafkaBatchDecodeError(
      codec,
      size === undefined
        ? `decompresses to more than the bound of ${bound.maxBytes} bytes (maxDecompressedBatchBytes)`
        : `decompresses to ${size} bytes, over the bound of ${bound.maxBytes} (maxDecompressedBatchBytes)`,
    );
  const guard = async (codec: string, decompress: () => Buffer | Promise<Buffer>): Promise<Buffer> => {
    try {
      return await decompress();
    } catch (error) {
      if (error instanceof KafkaBatchDecodeError) throw error;
      if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(codec);
      throw new KafkaBatchDecodeError(codec, `cannot be decompressed: ${(error as Error).message}`, error);
    }
  };

  return {
    gzip: {
      compress: (encoder) => gzip(encoder.buffer),
      decompress: (buffer) => guard('gzip', () => gunzip(buffer, { maxOutputLength: bound.maxBytes })),
    },
    snappy: {
      compress: async (encoder) => Buffer.from(snappy.compress(encoder.buffer)),
      decompress: (buffer) => guard('snappy', () => snappyDecompress(buffer, bound.maxBytes, tooLarge)),
    },
    lz4: {
      compress: async (encoder) => lz4Frame(encoder.buffer),
      decompress: (buffer) =>
        guard('lz4', () => {
          const size = lz4DecompressedBound(buffer);
          if (size > bound.maxBytes) throw tooLarge('lz4', size);
          const output = Buffer.alloc(size);
          return output.subarray(0, lz4.decompressFrame(buffer, output));
        }),
    },
    zstd: {
      compress: async (encoder) => {
        if (!zstdZlib.zstdCompress) {
          throw new KafkaConfigurationError(
            'compression',
            'zstd needs Node.js 22.15 or newer to produce (consuming works)',
          );
        }
        return promisify(zstdZlib.zstdCompress)(encoder.buffer);
      },
      decompress: (buffer) =>
        guard('zstd', () => {
          const maxBytes = bound.maxBytes;
          const chunks: Uint8Array[] = [];
          let size = 0;
          const stream = new ZstdDecompress((chunk) => {
            size += chunk.length;
            if (size > maxBytes) throw tooLarge('zstd');
            chunks.push(chunk);
          });
          stream.push(buffer, true);
          return Buffer.concat(chunks, size);
        }),
    },
  };
}

/**
 * Snappy as Kafka's Java client writes it: the xerial framing (a magic header, then length-prefixed raw snappy
 * blocks), or one raw snappy block (what other clients write).
 */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

function snappyDecompress(
  buffer: Buffer,
  maxBytes: number,
  tooLarge: (codec: string, size?: number) => Error,
): Buffer {
  if (buffer.length < XERIAL_HEADER_BYTES || !buffer.subarray(0, 8).equals(XERIAL_MAGIC)) {
    const size = snappyLength(buffer);
    if (size > maxBytes) throw tooLarge('snappy', size);
    return Buffer.from(snappy.uncompress(buffer, maxBytes));
  }
  const blocks: Uint8Array[] = [];
  let size = 0;
  let offset = XERIAL_HEADER_BYTES;
  while (offset < buffer.length) {
    const length = buffer.readUInt32BE(offset);
    offset += 4;
    if (offset + length > buffer.length)
      throw new Error(`snappy block of ${length} bytes past the end of the batch`);
    const raw = buffer.subarray(offset, offset + length);
    if (size + snappyLength(raw) > maxBytes) throw tooLarge('snappy');
    const block = snappy.uncompress(raw, maxBytes - size);
    offset += length;
    size += block.length;
    if (size > maxBytes) throw tooLarge('snappy');
    blocks.push(block);
  }
  return Buffer.concat(blocks, size);
}

/** The uncompressed length a raw snappy block announces (its leading varint). */
function snappyLength(block: Buffer): number {
  let length = 0;
  for (let i = 0, shift = 0; i < Math.min(block.length, 5); i++, shift += 7) {
    length += (block[i] & 0x7f) * 2 ** shift;
    if ((block[i] & 0x80) === 0) return length;
  }
  throw new Error('snappy block without a valid length');
}

/**
 * An LZ4 frame as Kafka's Java client writes and reads it: independent 64 KB blocks (the Java reader refuses
 * dependent ones), no content size, header checksum.
 */
const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_BYTES = 64 * 1024;

const LZ4_BLOCK_SIZES: Record<number, number> = {
  4: 64 * 1024,
  5: 256 * 1024,
  6: 1024 * 1024,
  7: 4 * 1024 * 1024,
};

/**
 * Walks the frame's block structure (lz4js's own bound loops forever on a truncated frame): the most bytes the
 * frame can decompress to, or an error when it is malformed.
 */
function lz4DecompressedBound(input: Buffer): number {
  if (input.length < 7 || input.readUInt32LE(0) !== LZ4_MAGIC) throw new Error('not an LZ4 frame');
  const flags = input[4];
  const blockSize = LZ4_BLOCK_SIZES[(input[5] >> 4) & 0x07];
  if ((flags & 0xc0) !== 0x40 || blockSize === undefined) throw new Error('unsupported LZ4 frame descriptor');
  let offset = 7 + (flags & 0x08 ? 8 : 0);
  const blockChecksum = flags & 0x10 ? 4 : 0;
  let bound = 0;
  for (;;) {
    if (offset + 4 > input.length) throw new Error('truncated LZ4 frame');
    const word = input.readUInt32LE(offset);
    offset += 4;
    if (word === 0) return bound;
    const length = word & 0x7fffffff;
    bound += word & 0x80000000 ? length : blockSize;
    offset += length + blockChecksum;
  }
}

function lz4Frame(input: Buffer): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(7);
  header.writeUInt32LE(LZ4_MAGIC, 0);
  header[4] = 0x40 | 0x20; // version 01, independent blocks
  header[5] = 4 << 4; // maximum block size 64 KB
  header[6] = (lz4Hash.hash(0, header, 4, 2) >> 8) & 0xff;
  parts.push(header);
  const scratch = new Uint8Array(lz4.compressBound(LZ4_BLOCK_BYTES));
  for (let start = 0; start < input.length; start += LZ4_BLOCK_BYTES) {
    const length = Math.min(LZ4_BLOCK_BYTES, input.length - start);
    const compressed = lz4.compressBlock(input, scratch, start, length, new Uint32Array(1 << 16));
    const size = Buffer.alloc(4);
    if (compressed > 0 && compressed < length) {
      size.writeUInt32LE(compressed, 0);
      parts.push(size, Buffer.from(scratch.subarray(0, compressed)));
    } else {
      size.writeUInt32LE((0x80000000 | length) >>> 0, 0);
      parts.push(size, input.subarray(start, start + length));
    }
  }
  parts.push(Buffer.alloc(4)); // end mark
  return Buffer.concat(parts);
}
