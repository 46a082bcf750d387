import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { BrokerConnectivity } from './broker-connectivity.js';

describe('BrokerConnectivity', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  test('a write after this process ended the socket is no outage', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const connectivity = new BrokerConnectivity(30_000);
    const writeAfterEnd = Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' });
    connectivity.failed('127.0.0.1:9092', writeAfterEnd);
    expect(warn).not.toHaveBeenCalled();
    expect(connectivity.unreachable).toEqual([]);
  });

  test('one line when a broker goes away, a summary while it stays away, one when it is back', () => {
    jest.useFakeTimers();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const connectivity = new BrokerConnectivity(30_000);
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:9092');

    for (let i = 0; i < 50; i++) connectivity.failed('127.0.0.1:9092', refused);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(
      /^Broker 127\.0\.0\.1:9092 unreachable \(connect ECONNREFUSED 127\.0\.0\.1:9092\)/,
    );
    expect(connectivity.unreachable).toEqual(['127.0.0.1:9092']);

    jest.advanceTimersByTime(30_000);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[1][0]).toMatch(
      /still unreachable after 30 s \(50 failed connection attempt\(s\), last: connect ECONNREFUSED/,
    );

    connectivity.connected('127.0.0.1:9092');
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0][0]).toMatch(
      /^Broker 127\.0\.0\.1:9092 reachable again after 30 s \(50 failed connection attempt\(s\)\)/,
    );
    expect(connectivity.unreachable).toEqual([]);

    jest.advanceTimersByTime(120_000);
    expect(warn).toHaveBeenCalledTimes(2);
    connectivity.connected('127.0.0.1:9092');
    expect(log).toHaveBeenCalledTimes(1);
  });

  test('summaries stop once nothing tries the broker any more (the clients closed); a new attempt reports anew', () => {
    jest.useFakeTimers();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    const connectivity = new BrokerConnectivity(30_000);
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:1');

    for (let i = 0; i < 44; i++) connectivity.failed('127.0.0.1:1', refused);
    jest.advanceTimersByTime(30_000);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[1][0]).toMatch(/still unreachable after 30 s \(44 failed connection attempt\(s\)/);

    // No attempt for a whole period: no summary repeating the same count, and no timer left.
    jest.advanceTimersByTime(300_000);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(connectivity.unreachable).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);

    connectivity.failed('127.0.0.1:1', refused);
    expect(warn).toHaveBeenCalledTimes(3);
    expect(warn.mock.calls[2][0]).toMatch(/^Broker 127\.0\.0\.1:1 unreachable/);
  });
});
