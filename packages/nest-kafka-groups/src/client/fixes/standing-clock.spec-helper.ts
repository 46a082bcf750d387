import { afterEach, beforeEach, jest } from '@jest/globals';

/**
 * For the runner's specs: `Date` stands still during each test unless the spec moves it (`jest.setSystemTime`), so
 * the heartbeat, session and commit intervals a spec sets up hold however slowly it runs; timers and the event loop
 * stay real. Registers the hooks in the calling scope.
 */
export function dateStandsStillInEachTest(): void {
  beforeEach(() => {
    jest.useFakeTimers({
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    });
  });
  afterEach(() => {
    jest.useRealTimers();
  });
}
