/**
 * Retry and dead-letter topics that exist before the group starts (made by hand, by an earlier version, or whose
 * source topic was raised since), compared at start with their source topic's max.message.bytes, on a real broker.
 * See the README's retry and dead-letter topic sizes.
 */
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { ConsoleLogger } from '@nestjs/common';
import { randomInt } from 'node:crypto';
import { uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';
import { recording, recordingFeature, recordingSuite } from './support/recording-feature.js';

const SOURCE_BYTES = 262_144;
const SMALL_BYTES = 65_536;
const sized = (bytes: number) => [{ name: 'max.message.bytes', value: String(bytes) }];

describe('existing retry and dead-letter topics against their source topic max.message.bytes', () => {
  const { kafka, apps } = recordingSuite();
  let warnings: jest.SpiedFunction<ConsoleLogger['warn']>;
  beforeEach(() => {
    warnings = jest.spyOn(ConsoleLogger.prototype, 'warn');
  });
  afterEach(() => warnings.mockRestore());

  /** Starts the group with a retry topic and a dead-letter topic, and waits until it joined. */
  async function start(groupId: string, topic: string): Promise<void> {
    const { app } = await startTestApp([
      recordingFeature(groupId, topic, { retry: { topics: true, attempts: 2, delaysMs: [200] } }),
    ]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
  }

  const sizeWarnings = () =>
    warnings.mock.calls.map(([line]) => String(line)).filter((line) => line.includes('max.message.bytes'));

  test('smaller than the source: one WARN per topic naming it, its source, both sizes and how to raise it; the topics are left as they are', async () => {
    const topic = uniqueName('small-derived');
    const groupId = uniqueName('small-derived');
    await kafka.createTopic(topic, 1, sized(SOURCE_BYTES));
    await kafka.createTopic(`${topic}-retry`, 1, sized(SMALL_BYTES));
    await kafka.createTopic(`${topic}-dlt`, 1, sized(SMALL_BYTES));
    // The topics are checked before the members start: the WARNs come before the join.
    await start(groupId, topic);
    const lines = sizeWarnings();
    expect(lines).toHaveLength(2);
    for (const derived of [`${topic}-retry`, `${topic}-dlt`]) {
      const line = lines.find((l) => l.includes(`"${derived}"`));
      expect(line).toBeDefined();
      expect(line).toContain(`"${topic}"`);
      expect(line).toContain(`max.message.bytes ${SMALL_BYTES}`);
      expect(line).toContain(String(SOURCE_BYTES));
      expect(line).toContain(
        `--alter --entity-type topics --entity-name ${derived} --add-config max.message.bytes=`,
      );
    }
    const admin = await kafka.admin();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [`${topic}-retry`, `${topic}-dlt`].map((name) => ({
        type: 2,
        name,
        configNames: ['max.message.bytes'],
      })),
    });
    expect(resources.map((r) => r.configEntries[0].configValue)).toEqual([
      String(SMALL_BYTES),
      String(SMALL_BYTES),
    ]);
  });

  test('as large as the source, or created by the library: no WARN', async () => {
    const topic = uniqueName('sized-derived');
    const groupId = uniqueName('sized-derived');
    await kafka.createTopic(topic, 1, sized(SOURCE_BYTES));
    await kafka.createTopic(`${topic}-dlt`, 1, sized(SOURCE_BYTES));
    await start(groupId, topic);
    // The retry topic was created by this start, at the size read from its source (so the sizes could be read: a
    // comparison that did not run would warn of nothing too); a second start compares it as an existing one.
    await apps.pop()!.close();
    const admin = await kafka.admin();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2, name: `${topic}-retry`, configNames: ['max.message.bytes'] }],
    });
    expect(Number(resources[0].configEntries[0].configValue)).toBeGreaterThan(SOURCE_BYTES);
    await start(groupId, topic);
    expect(sizeWarnings()).toEqual([]);
  });
});

describe('retry records that fit their topic only with a stronger codec than the compression setting', () => {
  const { kafka, apps } = recordingSuite();
  let logs: jest.SpiedFunction<ConsoleLogger['log']>;
  beforeEach(() => {
    logs = jest.spyOn(ConsoleLogger.prototype, 'log');
  });
  afterEach(() => logs.mockRestore());

  test("compression 'lz4', a record its source took in a gzip batch: refused by the retry topic in lz4, written there in gzip", async () => {
    const topic = uniqueName('lz4-retry');
    const groupId = uniqueName('lz4-retry');
    // 250 KiB of random letters: gzip shrinks them below the source's size, lz4 hardly (docs/RELIABILITY.md, 21).
    const letters = Array.from({ length: 250 * 1024 }, () => String.fromCharCode(97 + randomInt(26))).join(
      '',
    );
    await kafka.createTopic(topic, 1, sized(SOURCE_BYTES - 64 * 1024));
    const producer = await kafka.producer();
    await producer.send({
      topic,
      acks: -1,
      compression: 1, // gzip
      messages: [{ value: JSON.stringify({ seq: 0, letters }) }],
    });
    await producer.send({ topic, acks: -1, messages: [{ value: JSON.stringify({ seq: 1 }) }] });
    recording.behaviour = ({ seq }, ctx) => {
      if (seq === 0 && ctx.attempt === 1) throw new Error('fails once');
    };
    const { app } = await startTestApp(
      [recordingFeature(groupId, topic, { retry: { topics: true, attempts: 2, delaysMs: [200] } })],
      { compression: 'lz4' },
    );
    apps.push(app);
    await waitFor('seq 0 handled from the retry topic, and seq 1', 20_000, () =>
      [0, 1].every((seq) =>
        recording.deliveries.some((d) => d.seq === seq && (seq === 1 || d.attempt === 2)),
      ),
    );
    // Through the resend: refused in lz4 by the retry topic, written there in gzip.
    const resent = logs.mock.calls
      .map(([line]) => String(line))
      .filter((line) => line.includes(`larger than "${topic}-retry" takes`));
    expect(resent).toEqual([
      expect.stringContaining("in forRoot compression 'lz4' (max.message.bytes): written gzip-compressed"),
    ]);
  });
});
