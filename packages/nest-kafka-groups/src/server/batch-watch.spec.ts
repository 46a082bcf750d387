import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import type { KafkaMessage } from '../client/kafkajs.js';
import { KafkaHandlerTimeoutError } from '../errors/kafka-handler-timeout.error.js';
import { BatchWatch, type BatchWatchOptions, OVERDUE_GRACE_MS } from './batch-watch.js';

const message = (offset: string) => ({ offset }) as KafkaMessage;

describe('BatchWatch', () => {
  let watch: BatchWatch | undefined;
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    watch?.close();
    jest.useRealTimers();
  });

  function start(overrides: Partial<BatchWatchOptions> = {}) {
    const heartbeat = jest.fn<() => Promise<void>>().mockResolvedValue(undefined);
    watch = new BatchWatch({
      handlerName: 'Orders.onOrder',
      topic: 'orders',
      partition: 2,
      heartbeat,
      heartbeatIntervalMs: 3_000,
      maxProcessingTimeMs: 300_000,
      commitIntervalMs: 5_000,
      ...overrides,
    });
    return { watch, heartbeat };
  }

  test('heartbeats every half heartbeat interval while a handler runs longer than the session timeout', () => {
    const { watch, heartbeat } = start();
    watch.current = message('10');
    jest.advanceTimersByTime(45_000);
    expect(heartbeat).toHaveBeenCalledTimes(30);
    expect(watch.controller.signal.aborted).toBe(false);
  });

  test('heartbeats every half commitIntervalMs when that is sooner (the runner commits on it), never every 10 ms for 0', () => {
    const { watch, heartbeat } = start({ commitIntervalMs: 1_000 });
    watch.current = message('10');
    jest.advanceTimersByTime(4_500);
    expect(heartbeat).toHaveBeenCalledTimes(9);
    watch.close();

    const { watch: everyBatch, heartbeat: everyBatchBeat } = start({ commitIntervalMs: 0 });
    everyBatch.current = message('10');
    jest.advanceTimersByTime(4_500);
    expect(everyBatchBeat).toHaveBeenCalledTimes(3);
  });

  test('a failed heartbeat is kept for the batch to throw, never thrown from the timer', async () => {
    const rebalancing = Object.assign(new Error('The group is rebalancing'), {
      type: 'REBALANCE_IN_PROGRESS',
    });
    const { watch } = start({ heartbeat: () => Promise.reject(rebalancing) });
    watch.current = message('10');
    jest.advanceTimersByTime(1_500);
    await Promise.resolve();
    jest.advanceTimersByTime(1_500);
    await Promise.resolve();
    expect(watch.heartbeatError).toBe(rebalancing);
  });

  test('aborts the signal with a KafkaHandlerTimeoutError once one message ran longer than maxProcessingTimeMs', () => {
    const { watch } = start({ heartbeatIntervalMs: 500, maxProcessingTimeMs: 2_000 });
    watch.current = message('10');
    jest.advanceTimersByTime(1_999);
    expect(watch.controller.signal.aborted).toBe(false);
    jest.advanceTimersByTime(500);
    expect(watch.controller.signal.aborted).toBe(true);
    expect(watch.timedOut).toBeInstanceOf(KafkaHandlerTimeoutError);
    expect(watch.controller.signal.reason).toBe(watch.timedOut);
    expect(watch.timedOut?.message).toBe(
      'Orders.onOrder on orders[2]@10 ran longer than maxProcessingTimeMs (2000 ms); ctx.signal aborted',
    );
  });

  test('tells onOverdue once when the handler still runs OVERDUE_GRACE_MS after the abort, never when it gave up', () => {
    const onOverdue = jest.fn<(timedOut: KafkaHandlerTimeoutError) => void>();
    const { watch } = start({ heartbeatIntervalMs: 500, maxProcessingTimeMs: 2_000, onOverdue });
    watch.current = message('10');
    jest.advanceTimersByTime(2_000 + OVERDUE_GRACE_MS - 1);
    expect(watch.controller.signal.aborted).toBe(true);
    expect(onOverdue).not.toHaveBeenCalled();
    jest.advanceTimersByTime(60_000);
    expect(onOverdue).toHaveBeenCalledTimes(1);
    expect(onOverdue.mock.calls[0][0]).toBe(watch.timedOut);

    const gaveUp = jest.fn<(timedOut: KafkaHandlerTimeoutError) => void>();
    const { watch: other } = start({
      heartbeatIntervalMs: 500,
      maxProcessingTimeMs: 2_000,
      onOverdue: gaveUp,
    });
    other.current = message('11');
    jest.advanceTimersByTime(2_500);
    expect(other.controller.signal.aborted).toBe(true);
    other.close();
    jest.advanceTimersByTime(60_000);
    expect(gaveUp).not.toHaveBeenCalled();
  });

  test('messages that each finish in time never time out, however long the batch runs', () => {
    const { watch } = start({ heartbeatIntervalMs: 500, maxProcessingTimeMs: 2_000 });
    for (let offset = 0; offset < 40; offset++) {
      watch.current = message(String(offset));
      jest.advanceTimersByTime(1_000);
    }
    expect(watch.controller.signal.aborted).toBe(false);
  });

  test('close stops the timer', () => {
    const { watch, heartbeat } = start();
    watch.close();
    jest.advanceTimersByTime(60_000);
    expect(heartbeat).not.toHaveBeenCalled();
  });
});
