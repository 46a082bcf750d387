import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createRequire } from 'node:module';
import { kafkajsInternal } from '../kafkajs.js';

const Fixed = kafkajsInternal('src/network/requestQueue/index.js');
const Released = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js');

const silent = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

const queues: any[] = [];
function queue(RequestQueue: any): any {
  const created = new RequestQueue({
    maxInFlightRequests: 1,
    requestTimeout: 30_000,
    enforceRequestTimeout: true,
    clientId: 'request-queue-spec',
    broker: '127.0.0.1:9',
    logger: silent,
  });
  queues.push(created);
  return created;
}

afterEach(() => {
  for (const created of queues.splice(0)) created.destroy();
  jest.restoreAllMocks();
});

/** The clock standing still at `now`, so a throttle's end is exactly where the spec puts it. */
function clockAt(now: number): number {
  jest.spyOn(Date, 'now').mockReturnValue(now);
  return now;
}

describe('the carried request queue: a check of pending requests only when one waits', () => {
  it('kafkajs 2.2.4 as released arms a timer after an answer with nothing pending (kept to show the bug)', () => {
    const released = queue(Released);
    released.scheduleCheckPendingRequests();
    expect(released.throttleCheckTimeoutId).not.toBeNull();
  });

  it('arms nothing when no request waits and no throttle runs', () => {
    const fixed = queue(Fixed);
    fixed.scheduleCheckPendingRequests();
    expect(fixed.throttleCheckTimeoutId).toBeNull();
  });

  it('still checks when a request waits', () => {
    const fixed = queue(Fixed);
    fixed.pending.push({});
    fixed.scheduleCheckPendingRequests();
    expect(fixed.throttleCheckTimeoutId).not.toBeNull();
  });

  it("still checks at a throttle's end with nothing pending", () => {
    const fixed = queue(Fixed);
    fixed.throttledUntil = clockAt(1_000_000) + 1;
    fixed.scheduleCheckPendingRequests();
    expect(fixed.throttleCheckTimeoutId).not.toBeNull();
  });

  it('arms nothing for a throttle that has ended, with nothing pending', () => {
    const fixed = queue(Fixed);
    fixed.throttledUntil = clockAt(1_000_000);
    fixed.scheduleCheckPendingRequests();
    expect(fixed.throttleCheckTimeoutId).toBeNull();
  });
});
