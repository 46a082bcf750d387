import { expect } from '@jest/globals';
import { DLT_HEADERS } from 'nest-kafka-groups';
import type { KafkaTestClient } from 'nest-kafka-groups/testing';
import type { ForeignProducerRecord, ForeignRecord } from './foreign-client.js';

/** The codecs a foreign producer writes batches in: each run of records gets its own batch. */
export const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

/** What a handler saw of one record. */
export interface HandledRecord {
  key: string | undefined;
  payload: unknown;
  headers: Record<string, string | string[]>;
}

interface Expected {
  producer: string;
  codec: string;
  kind: string;
  key: string | null;
}

/**
 * The records a foreign producer writes, per codec: JSON values with keys, one with repeated, empty and null-valued
 * headers, one with a null key, a tombstone and a value that is not JSON. Values are long enough to compress
 * (franz-go and librdkafka send a batch uncompressed when compressing does not make it smaller).
 */
export class ForeignRecordPlan {
  readonly records: ForeignProducerRecord[] = [];
  private readonly expected = new Map<number, Expected>();
  private readonly pad = 'flight-position '.repeat(8);

  /** Adds `producer`'s records (sequence numbers from `base`); returns them. */
  add(producer: string, base: number): ForeignProducerRecord[] {
    const added = CODECS.flatMap((codec, c) => {
      const first = base + c * 100;
      const json = (seq: number, kind: string, key: string | null): ForeignProducerRecord => {
        this.expected.set(seq, { producer, codec, kind, key });
        return {
          key,
          value: JSON.stringify({ seq, producer, codec, kind, pad: this.pad }),
          headers: [
            ['codec', codec],
            ['producer', producer],
          ],
          partition: 0,
          codec,
        };
      };
      const headers = json(first + 8, 'headers', 'h');
      headers.headers.push(['dup', '1'], ['dup', '2'], ['empty', ''], ['null-value', null]);
      return [
        ...Array.from({ length: 8 }, (_, i) => json(first + i, 'plain', `k${i}`)),
        headers,
        json(first + 9, 'null-key', null),
        { key: `gone-${producer}-${codec}`, value: null, headers: [['codec', codec]], partition: 0, codec },
        {
          key: `bad-${producer}-${codec}`,
          value: `not json ${this.pad}`,
          headers: [['codec', codec]],
          partition: 0,
          codec,
        },
      ] satisfies ForeignProducerRecord[];
    });
    this.records.push(...added);
    return added;
  }

  /** Every record read back sits in a batch of the codec it was produced with (its header names it). */
  expectCodecs(read: ForeignRecord[]): void {
    expect(read.map((r) => [r.offset, r.codec, r.headers.find(([name]) => name === 'codec')?.[1]])).toEqual(
      this.records.map((r, offset) => [offset, r.codec, r.codec]),
    );
  }

  /**
   * What the handler saw is what README "Interoperability" documents: each JSON record once with its key
   * (undefined when null) and decoded headers, each tombstone with a null payload, and each value that is not
   * JSON dead-lettered (never handled) with the decode error. Returns the counts.
   */
  async expectHandledAsDocumented(kafka: KafkaTestClient, topic: string, handled: HandledRecord[]) {
    const json = handled.filter((d) => d.payload !== null);
    expect(json.map((d) => (d.payload as { seq: number }).seq).sort((a, b) => a - b)).toEqual(
      [...this.expected.keys()].sort((a, b) => a - b),
    );
    for (const d of json) {
      const { seq, producer, codec, kind } = d.payload as Expected & { seq: number };
      const expected = this.expected.get(seq)!;
      expect({ producer, codec, kind }).toEqual({
        producer: expected.producer,
        codec: expected.codec,
        kind: expected.kind,
      });
      expect(d.key).toBe(expected.key ?? undefined);
      expect(d.headers.codec).toBe(codec);
      expect(d.headers.producer).toBe(producer);
      // A repeated name reads as an array in order, an empty value and a null value both as ''.
      if (kind === 'headers')
        expect(d.headers).toMatchObject({ dup: ['1', '2'], empty: '', 'null-value': '' });
    }
    const tombstones = handled.filter((d) => d.payload === null);
    expect(tombstones.map((d) => d.key).sort()).toEqual(
      this.records
        .filter((r) => r.value === null)
        .map((r) => r.key)
        .sort(),
    );
    const bad = this.records.filter((r) => r.value?.startsWith('not json'));
    const dead = await kafka.readMessages(`${topic}-dlt`, bad.length);
    expect(dead.map((m) => m.key!.toString()).sort()).toEqual(bad.map((r) => r.key).sort());
    for (const m of dead) {
      expect(m.headers![DLT_HEADERS.exceptionFqcn]!.toString()).toBe('KafkaPayloadDecodeError');
      expect(m.headers![DLT_HEADERS.exceptionMessage]!.toString()).toContain(`${topic}[0]@`);
      expect(m.value!.toString()).toBe(`not json ${this.pad}`);
    }
    return { json: json.length, tombstones: tombstones.length, dead: dead.length };
  }
}
