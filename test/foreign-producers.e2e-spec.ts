/**
 * Records only a foreign producer writes, consumed by a group of this library on a real broker: a Java
 * transactional producer's committed and aborted transactions (control records between and after them), and a
 * record carrying a header whose value is null, dead-lettered; binary keys and header values; a record near the
 * broker's maximum size. README "Interoperability".
 */
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { DLT_HEADERS } from 'nest-kafka-groups';
import { testBrokers, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { INTEROP_CONSUMER_SOURCE, KAFKA_LIB } from './support/java/java-consumer.js';
import { javaAvailable } from './support/local-machine.js';
import { startTestApp } from './support/nest-test-app.js';
import { recording, recordingFeature, recordingSuite } from './support/recording-feature.js';

const PRODUCER_SOURCE = join(INTEROP_CONSUMER_SOURCE, '..', 'ForeignProducer.java');

function javaProduce(topic: string, scenario: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'java',
      ['-Xmx256m', '-cp', join(KAFKA_LIB, '*'), PRODUCER_SOURCE, testBrokers().join(','), topic, scenario],
      { timeout: 120_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

(javaAvailable() ? describe : describe.skip)('foreign producers', () => {
  const { kafka, apps } = recordingSuite();

  async function start(topic: string, partitions = 1) {
    const groupId = uniqueName('foreign');
    await kafka.createTopic(topic, partitions);
    await kafka.createTopic(`${topic}-dlt`, 1);
    const { app } = await startTestApp([recordingFeature(groupId, topic)]);
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);
    return groupId;
  }

  const send = (topic: string, seq: number) =>
    kafka.produce(topic, [{ key: `k${seq}`, value: JSON.stringify({ seq }), partition: 0 }]);

  test('a Java transactional producer: committed records handled once, aborted ones never, the lag reaches 0 past the control records', async () => {
    const topic = uniqueName('tx');
    const groupId = await start(topic);
    expect(await javaProduce(topic, 'transactions')).toBe('DONE\n');

    // 15 records and 3 control records: the log ends at 18, on a commit marker.
    const [end] = await kafka.waitForCommittedToEnd(groupId, topic);
    expect(end.end).toBe(18);
    expect(recording.deliveries.map((h) => h.seq)).toEqual([...range(0, 5), ...range(10, 15)]);
    const dlt = await (await kafka.admin()).fetchTopicOffsets(`${topic}-dlt`);
    expect(dlt.map((o) => o.high)).toEqual(['0']);
  }, 120_000);

  test('a log ending in an aborted transaction: the group commits past the abort marker', async () => {
    const topic = uniqueName('tx-abort');
    const groupId = await start(topic);
    expect(await javaProduce(topic, 'aborted-last')).toBe('DONE\n');

    const [end] = await kafka.waitForCommittedToEnd(groupId, topic);
    expect(end.end).toBe(8);
    expect(recording.deliveries.map((h) => h.seq)).toEqual(range(0, 3));
  }, 120_000);

  test('binary (non-UTF-8) key and header values: dead-lettered byte for byte, the next record handled', async () => {
    const topic = uniqueName('binary');
    const groupId = await start(topic);
    const key = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    const bin = Buffer.from([0xc3, 0x28, 0xa0, 0xa1]);
    await kafka.produce(topic, [
      { key, value: 'not json', headers: { bin, dup: [bin, Buffer.from('two')] }, partition: 0 },
      { key, value: JSON.stringify({ seq: 1 }), headers: { bin }, partition: 0 },
    ]);
    await waitFor('the JSON record handled', 30_000, () => recording.deliveries.length === 1);
    expect(recording.deliveries.map(({ seq, offset }) => ({ seq, offset }))).toEqual([
      { seq: 1, offset: '1' },
    ]);
    await kafka.waitForCommittedToEnd(groupId, topic);
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.key).toEqual(key);
    expect(dead.headers?.bin).toEqual(bin);
    expect(dead.headers?.dup).toEqual([bin, Buffer.from('two')]);
  }, 60_000);

  test("a record near the broker's maximum size is handled, and the partition goes on", async () => {
    const topic = uniqueName('near-max');
    const groupId = await start(topic);
    // The broker's default message.max.bytes is 1048588 for a whole batch; the library's maxValueBytes is 1 MiB.
    const value = JSON.stringify({ seq: 0, pad: 'x'.repeat(1_040_000) });
    await kafka.produce(topic, [{ key: 'big', value, partition: 0 }]);
    await send(topic, 1);
    await kafka.waitForCommittedToEnd(groupId, topic);
    expect(recording.deliveries.map((h) => h.seq)).toEqual([0, 1]);
  }, 60_000);

  test('a record with a null-valued header is dead-lettered with that header still null, and the partition goes on', async () => {
    const topic = uniqueName('null-header');
    const groupId = await start(topic);
    expect(await javaProduce(topic, 'null-header')).toBe('DONE\n');

    await waitFor('the record after it handled', 30_000, () => recording.deliveries.length === 1);
    expect(recording.deliveries.map(({ seq, offset }) => ({ seq, offset }))).toEqual([
      { seq: 1, offset: '1' },
    ]);
    await kafka.waitForCommittedToEnd(groupId, topic);
    const [dead] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(dead.key?.toString()).toBe('k0');
    expect(dead.value?.toString()).toBe('not json');
    expect(dead.headers?.trace).toBeNull();
    expect(dead.headers?.origin?.toString()).toBe('java');
    expect(dead.headers?.[DLT_HEADERS.exceptionFqcn]?.toString()).toBe('KafkaPayloadDecodeError');
  }, 120_000);
});
