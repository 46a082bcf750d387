import type { CarriedFix } from '../kafkajs-loader.js';

interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

type RequestQueueClass = new (options: object) => RequestQueue;

/**
 * Extends kafkajs 2.2.4's network/requestQueue: it schedules a check of its pending requests after every answer,
 * also with nothing pending and no throttle in force. The delay is then the throttle's end (-1 before any throttle)
 * minus the clock: a timer per answer that checks an empty queue, and on Node.js 24 a TimeoutNegativeWarning in the
 * application's output (kafkajs#1751). A check is scheduled only when a request waits or a throttle runs.
 */
export const requestQueueFix: CarriedFix = {
  module: 'src/network/requestQueue/index.js',
  sha256: 'b55986089c14f8f7bfc377922e2e65b3e4c1e7c7af2752d3b10a75dfe9e9260c',
  create: (_require, released) => checkingOnlyWhatWaits(released() as RequestQueueClass),
};

export function checkingOnlyWhatWaits(Released: RequestQueueClass): RequestQueueClass {
  return class RequestQueue extends Released {
    override scheduleCheckPendingRequests(): void {
      if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
      super.scheduleCheckPendingRequests();
    }
  };
}
