#!/usr/bin/env node
/**
 * Time to decode one record with N headers (default 2,000, 4,000, 8,000): kafkajs 2.2.4's record decoder as
 * released against the library's carried one (docs/RELIABILITY.md). Needs `npm run build`.
 *
 *   node bench/header-decode.mjs [N ...]
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// The package's compiled seam (not part of its public exports).
const dist = path.resolve(import.meta.dirname, '../packages/nest-kafka-groups/dist');
const { kafkajsInternal } = await import(pathToFileURL(path.join(dist, 'client/kafkajs.js')).href);
const require = createRequire(import.meta.url);
const released = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');
const carried = kafkajsInternal('src/protocol/recordBatch/record/v0/decoder.js');
const encode = kafkajsInternal('src/protocol/recordBatch/record/v0/index.js');
const Decoder = kafkajsInternal('src/protocol/decoder.js');

const counts = process.argv.slice(2).map(Number);
for (const count of counts.length > 0 ? counts : [2000, 4000, 8000]) {
  const headers = {};
  for (let i = 0; i < count; i++) headers[`h${i}`] = Buffer.from('x'); // as issue 16: 8,000 headers in ~64 KB
  const encoded = encode({ key: Buffer.from('k'), value: Buffer.from('v'), headers }).buffer;
  const body = new Decoder(encoded).readVarIntBytes();
  const time = (decode) => {
    const started = performance.now();
    decode(new Decoder(body), { firstOffset: '0', firstTimestamp: '0', magicByte: 2 });
    return performance.now() - started;
  };
  time(carried); // warm-up
  console.log(
    `${count} headers (${encoded.length} bytes): kafkajs 2.2.4 ${time(released).toFixed(1)} ms, ` +
      `carried decoder ${time(carried).toFixed(1)} ms`,
  );
}
