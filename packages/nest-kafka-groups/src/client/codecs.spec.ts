import { describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { KafkaBatchDecodeError } from '../errors/kafka-batch-decode.error.js';
import { createCodecs } from './codecs.js';

const MB = 1024 * 1024;
const codecs = createCodecs({ maxBytes: MB });
const text = Buffer.from('{"flight":"AF123","lat":48.85,"lon":2.35}'.repeat(500));
/** `zstd -19` of 56 bytes of text, and of 4 MB of zeros (streamed: no content size in the frame header). */
const ZSTD_TEXT = 'KLUv/SQ4JQEA6GhlbGxvIHpzdGQgZnJvbSB0aGUgZml4dHVyZSwgAQCBUDkBWjFZAg==';
const ZSTD_4MB_ZEROS =
  'KLUv/QRoTAAACAABAPz/ORACAgAQAAIAEAACABAAAgAQAAIAEAACABAAAgAQAAIAEAACABAAAgAQAAIAEAACABAAAgAQAAIAEAACABAAAgAQAAIAEAACABAAAgAQAAIAEAACABAAAgAQAAIAEAACABAAAgAQAAIAEAACABAAAgAQAAIAEAACABAAAwAQACidvHw=';

describe('codecs registered on the library kafkajs instance', () => {
  it.each(['gzip', 'snappy', 'lz4'] as const)(
    '%s: what it compresses decompresses to the same bytes',
    async (name) => {
      const compressed = await codecs[name].compress({ buffer: text });
      expect(compressed.length).toBeLessThan(text.length / 4);
      expect((await codecs[name].decompress(compressed)).equals(text)).toBe(true);
    },
  );

  it('lz4: frames of several independent 64 KB blocks, as the Java client reads them', async () => {
    const large = Buffer.concat([text, Buffer.alloc(300 * 1024, 7), text]);
    const frame = await codecs.lz4.compress({ buffer: large });
    expect(frame[4] & 0x20).toBe(0x20); // block independence flag
    expect((await codecs.lz4.decompress(frame)).equals(large)).toBe(true); // toEqual walks byte by byte
  });

  it('snappy: reads the xerial framing of the Java client (several blocks) and raw snappy', async () => {
    const raw = await codecs.snappy.compress({ buffer: text });
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(raw.length);
    const framed = Buffer.concat([header, length, raw, length, raw]);
    expect((await codecs.snappy.decompress(framed)).equals(Buffer.concat([text, text]))).toBe(true);
  });

  it('zstd: decompresses frames with and without a content size', async () => {
    expect(String(await codecs.zstd.decompress(Buffer.from(ZSTD_TEXT, 'base64')))).toBe(
      'hello zstd from the fixture, hello zstd from the fixture',
    );
    const big = createCodecs({ maxBytes: 8 * MB });
    expect(
      (await big.zstd.decompress(Buffer.from(ZSTD_4MB_ZEROS, 'base64'))).equals(Buffer.alloc(4 * MB)),
    ).toBe(true);
  });

  describe('decompression is bounded (maxDecompressedBatchBytes): over it, a typed non-retryable error', () => {
    const bomb = Buffer.alloc(4 * MB);
    it('gzip: 4 MB of zeros (4 KB compressed) against a 1 MB bound', async () => {
      const compressed = gzipSync(bomb);
      expect(compressed.length).toBeLessThan(8 * 1024);
      await expect(codecs.gzip.decompress(compressed)).rejects.toThrow(KafkaBatchDecodeError);
      await expect(codecs.gzip.decompress(compressed)).rejects.toThrow(/the bound of 1048576 bytes/);
    });
    it.each(['snappy', 'lz4'] as const)('%s: 4 MB of zeros against a 1 MB bound', async (name) => {
      const compressed = await createCodecs({ maxBytes: 8 * MB })[name].compress({ buffer: bomb });
      await expect(codecs[name].decompress(compressed)).rejects.toThrow(/bound of 1048576/);
    });
    it('zstd: 4 MB of zeros in a streamed frame (no size announced) against a 1 MB bound', async () => {
      await expect(codecs.zstd.decompress(Buffer.from(ZSTD_4MB_ZEROS, 'base64'))).rejects.toThrow(
        /zstd record batch decompresses to more than the bound of 1048576 bytes/,
      );
    });
  });

  it.each(['gzip', 'snappy', 'lz4', 'zstd'] as const)(
    '%s: corrupt or truncated input is a KafkaBatchDecodeError, not a hang nor a crash',
    async (name) => {
      const valid =
        name === 'zstd' ? Buffer.from(ZSTD_TEXT, 'base64') : await codecs[name].compress({ buffer: text });
      for (const broken of [
        valid.subarray(0, valid.length - 5),
        Buffer.from('not compressed at all, really'),
      ]) {
        await expect(codecs[name].decompress(broken)).rejects.toThrow(KafkaBatchDecodeError);
      }
    },
  );
});
