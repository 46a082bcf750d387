import { describe, expect, test } from '@jest/globals';
import { nestLevelOf } from './kafkajs-log-level.js';

const ERROR = 1;
const WARN = 2;
const INFO = 4;
const DEBUG = 5;

describe('nestLevelOf (kafkajs log entries onto Nest levels)', () => {
  test.each([
    [
      'a broker error answer',
      ERROR,
      'Response Heartbeat(key: 12, version: 3)',
      { error: 'The group is rebalancing, so a rejoin is needed' },
    ],
    [
      'the coordinator loading',
      ERROR,
      'Response FindCoordinator(key: 10, version: 2)',
      { error: "The coordinator is loading and hence can't process requests" },
    ],
    [
      'a refused connection',
      ERROR,
      'Connection error: connect ECONNREFUSED 127.0.0.1:9092',
      { broker: '127.0.0.1:9092' },
    ],
    ['a connection timeout', ERROR, 'Connection timeout', { broker: '127.0.0.1:9092' }],
    [
      'a seed broker retry',
      ERROR,
      'Failed to connect to seed broker, trying another broker from the list: x',
      { retryCount: 1, retryTime: 300 },
    ],
    [
      'any entry kafkajs retries',
      ERROR,
      'Failed to send messages: This server does not host this topic-partition',
      { retryCount: 2, retryTime: 600 },
    ],
    [
      'the consumer crash line (the member logs its own)',
      ERROR,
      'Crash: KafkaJSNumberOfRetriesExceeded: x',
      { groupId: 'g' },
    ],
    ['the consumer restart line', ERROR, 'Restarting the consumer in 300ms', { groupId: 'g' }],
    [
      'a rejoin after the coordinator forgot the member',
      ERROR,
      'The coordinator is not aware of this member, re-joining the group',
      {},
    ],
    ['a rebalance', WARN, 'The group is rebalancing, re-joining', { groupId: 'g' }],
    [
      'the deliberate producer retry bound',
      WARN,
      'Limiting retries for the idempotent producer may invalidate EoS guarantees',
      {},
    ],
    ['a join (the member logs its own)', INFO, 'Consumer has joined the group', { groupId: 'g' }],
    ['a pause', INFO, 'Pausing fetching from 1 topics', {}],
    ['a debug line', DEBUG, 'Request Fetch(key: 1, version: 11)', {}],
  ])('%s is debug', (_what, level, message, extra) => {
    expect(nestLevelOf(level, message, extra)).toBe('debug');
  });

  test('a bug in a callback of this library stays ERROR', () => {
    expect(nestLevelOf(ERROR, 'Error when calling eachBatch', { topic: 't' })).toBe('error');
    expect(nestLevelOf(ERROR, 'Failed to execute listener: x', {})).toBe('error');
  });

  test('the same callback failure reported at WARN stays a WARN', () => {
    expect(nestLevelOf(WARN, 'Error when calling eachBatch', { topic: 't' })).toBe('warn');
  });

  test('anything else kafkajs reports at ERROR or WARN is a WARN', () => {
    expect(nestLevelOf(ERROR, 'Offset out of range, resetting to default offset', { topic: 't' })).toBe(
      'warn',
    );
    expect(nestLevelOf(WARN, 'Consumer group received unsubscribed topics', {})).toBe('warn');
  });
});
