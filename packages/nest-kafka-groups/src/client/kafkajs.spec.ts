import { afterAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { KafkaClientCompatibilityError } from '../errors/kafka-client-compatibility.error.js';
import { CARRIED_FIXES, Kafka, kafkajsInternal } from './kafkajs.js';
import { loadKafkajs } from './kafkajs-loader.js';

const installed = path.dirname(createRequire(import.meta.url).resolve('kafkajs/package.json'));
const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('the kafkajs fixes carried by the library', () => {
  it('are active on the library instance while node_modules/kafkajs is the released 2.2.4, unmodified', () => {
    // What an application installs from the registry (CI's `npm ci` too): nothing patched on disk.
    for (const fix of CARRIED_FIXES) {
      expect(digest(path.join(installed, fix.module))).toBe(fix.sha256);
    }
    // The module kafkajs's own modules get from the library's instance is the fix, not the file on disk.
    const plain = createRequire(import.meta.url);
    // A module exporting an object (produce/index.js) by the source of its functions.
    const source = (exports: unknown): string =>
      typeof exports === 'function'
        ? String(exports)
        : Object.values(exports as object)
            .filter((value) => typeof value === 'function')
            .map(String)
            .join('\n');
    for (const fix of CARRIED_FIXES) {
      const own = kafkajsInternal(fix.module);
      expect(source(own)).not.toBe(source(plain(path.join(installed, fix.module))));
    }
  });

  it('decode an 8,000-header record in linear time, into a null-prototype object', () => {
    const headers: Record<string, Buffer | Buffer[]> = {};
    for (let i = 0; i < 8000; i++) headers[`h${i}`] = Buffer.from(`v${i}`);
    Object.defineProperty(headers, '__proto__', {
      value: [Buffer.from('p1'), Buffer.from('p2')],
      enumerable: true,
    });
    const decoded = decodeRecordWith(
      kafkajsInternal('src/protocol/recordBatch/record/v0/decoder.js'),
      headers,
    );
    // CPU time, not wall-clock time: other processes on a busy machine do not add to it. kafkajs 2.2.4's own
    // decoder (a copy of the headers object per header) spends seconds here.
    expect(decoded.cpuMs).toBeLessThan(1000);
    expect(Object.getPrototypeOf(decoded.headers)).toBeNull();
    expect(Object.keys(decoded.headers)).toHaveLength(8001);
    expect(String(decoded.headers.h7999)).toBe('v7999');
    expect((decoded.headers['__proto__'] as Buffer[]).map(String)).toEqual(['p1', 'p2']);
  });

  it('decode repeated headers as upstream does: an array of the values, in order', () => {
    const headers = { one: Buffer.from('1'), many: [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')] };
    const fixed = decodeRecordWith(kafkajsInternal('src/protocol/recordBatch/record/v0/decoder.js'), headers);
    const upstream = decodeRecordWith(
      createRequire(import.meta.url)(path.join(installed, 'src/protocol/recordBatch/record/v0/decoder.js')),
      headers,
    );
    expect({ ...fixed.headers }).toEqual(upstream.headers);
    expect({ ...fixed.record, headers: null }).toEqual({ ...upstream.record, headers: null });
  });
});

describe('loading kafkajs', () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'kafkajs-load-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** A copy of the installed kafkajs under a scratch app, changed by `edit`. */
  const appWith = (name: string, edit: (root: string) => void) => {
    const root = path.join(scratch, name, 'node_modules', 'kafkajs');
    cpSync(installed, root, { recursive: true });
    edit(root);
    return pathToFileURL(path.join(scratch, name, 'app.js'));
  };

  it('fails with the version when kafkajs is not 2.2.4', () => {
    const app = appWith('other-version', (root) => {
      const file = path.join(root, 'package.json');
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), version: '2.2.5' }));
    });
    expect(() => loadKafkajs(CARRIED_FIXES, app)).toThrow(KafkaClientCompatibilityError);
    expect(() => loadKafkajs(CARRIED_FIXES, app)).toThrow(
      /^kafkajs 2\.2\.5: .*package\.json: .*2\.2\.4 only/,
    );
  });

  it('fails naming the module when a file the library replaces differs from the release (e.g. patched)', () => {
    const app = appWith('patched', (root) => {
      const file = path.join(root, 'src/protocol/recordBatch/record/v0/decoder.js');
      writeFileSync(file, `${readFileSync(file, 'utf8')}\n// patched\n`);
    });
    expect(() => loadKafkajs(CARRIED_FIXES, app)).toThrow(
      'kafkajs 2.2.4: src/protocol/recordBatch/record/v0/decoder.js: the file differs from the released one',
    );
  });

  it('loads an instance of its own: another kafkajs in the process is left as it is', () => {
    const app = appWith('pristine', () => {});
    const own = loadKafkajs(CARRIED_FIXES, app);
    expect(own.root).toBe(path.join(scratch, 'pristine', 'node_modules', 'kafkajs'));
    expect(own.exports.Kafka).not.toBe(Kafka);
    const plain = createRequire(app)('kafkajs');
    expect(plain.Kafka).not.toBe(own.exports.Kafka);
  });
});

function decodeRecordWith(decoder: any, headers: Record<string, Buffer | Buffer[]>) {
  const encode = kafkajsInternal('src/protocol/recordBatch/record/v0/index.js');
  const Decoder = kafkajsInternal('src/protocol/decoder.js');
  const encoded = encode({ key: Buffer.from('k'), value: Buffer.from('v'), headers }).buffer;
  const body = new Decoder(encoded).readVarIntBytes();
  const started = process.cpuUsage();
  const record = decoder(new Decoder(body), { firstOffset: '10', firstTimestamp: '1000', magicByte: 2 });
  const { user, system } = process.cpuUsage(started);
  return {
    record,
    headers: record.headers as Record<string, unknown>,
    cpuMs: (user + system) / 1000,
  };
}
