import { describe, expect, it, jest } from '@jest/globals';
import { kafkajsInternal } from '../kafkajs.js';
import { dateStandsStillInEachTest } from './standing-clock.spec-helper.js';

/**
 * The carried Runner while the group coordinator answers every heartbeat "not available" (loading the group, or
 * waiting for a dead broker's replica), driven with an in-memory consumer group: the member keeps fetching, and
 * sends the heartbeat again no sooner than a retry backoff, as the Java consumer does (`retry.backoff.ms`), not
 * once per batch that ends. The clock (Date) stands still unless the spec moves it; timers and the event loop stay
 * real.
 */
const Fixed = kafkajsInternal('src/consumer/runner.js');
const { KafkaJSProtocolError } = kafkajsInternal('src/errors');
const { createErrorFromCode } = kafkajsInternal('src/protocol/error');
const GROUP_COORDINATOR_NOT_AVAILABLE = 15;
const RETRY_BACKOFF_MS = 100;
const quietLogger = { namespace: () => quietLogger, debug() {}, info() {}, warn() {}, error() {} };

function batch(offset: number) {
  return {
    topic: 't',
    partition: 0,
    highWatermark: String(offset + 1),
    messages: [{ offset: String(offset), value: Buffer.from('v') }],
    offsetLag: () => '0',
    offsetLagLow: () => '0',
    firstOffset: () => String(offset),
    lastOffset: () => String(offset),
    isEmpty: () => false,
    isEmptyDueToFiltering: () => false,
  };
}

describe('kafkajs Runner (fixed): heartbeats while the group coordinator is unavailable', () => {
  dateStandsStillInEachTest();

  it('sends the heartbeat again once per retry backoff, however many batches end meanwhile', async () => {
    let sent = 0;
    const consumerGroup = {
      groupId: 'g',
      memberId: 'm',
      generationId: 1,
      sessionTimeout: 30_000,
      // The last heartbeat answered 4 s ago: one is due, and the session is far from expiring.
      lastRequest: Date.now() - 4_000,
      heartbeat: () => {
        sent++;
        return Promise.reject(new KafkaJSProtocolError(createErrorFromCode(GROUP_COORDINATOR_NOT_AVAILABLE)));
      },
      resolveOffset() {},
      async commitOffsets() {},
      async commitOffsetsIfNecessary() {},
      hasSeekOffset: () => false,
      isPaused: () => false,
      getNodeIds: () => [],
      uncommittedOffsets: () => ({ topics: [] }),
    };
    const runner = new Fixed({
      logger: quietLogger,
      consumerGroup,
      instrumentationEmitter: { emit() {} },
      concurrency: 1,
      heartbeatInterval: 3_000,
      eachBatch: async () => {},
      onCrash: () => {},
      retry: { retries: 0 },
    });
    runner.running = true;

    let offset = 0;
    const batches = async (count: number) => {
      for (const end = offset + count; offset < end; offset++) {
        await runner.handleBatch(batch(offset));
        await new Promise((resolve) => setImmediate(resolve)); // the coordinator's answer lands
      }
    };
    await batches(50);
    expect(sent).toBe(1);
    jest.setSystemTime(Date.now() + RETRY_BACKOFF_MS - 1);
    await batches(20);
    expect(sent).toBe(1);
    jest.setSystemTime(Date.now() + 1);
    await batches(20);
    expect(sent).toBe(2);
    jest.setSystemTime(Date.now() + RETRY_BACKOFF_MS);
    await batches(20);
    expect(sent).toBe(3);
  });
});
