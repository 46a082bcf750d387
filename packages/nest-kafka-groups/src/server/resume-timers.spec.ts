import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { Kafka } from '../client/kafkajs.js';
import { ResumeTimers } from './resume-timers.js';

describe('ResumeTimers', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  test("kafkajs's resume() throws on a consumer whose group is not there (the crash path): the premise", () => {
    // Not connected, never run: the state a consumer is in while kafkajs rebuilds it after a crash.
    const consumer = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: 0 }).consumer({ groupId: 'g' });
    expect(() => consumer.resume([{ topic: 't', partitions: [0] }])).toThrow(
      'Consumer group was not initialized',
    );
  });

  test('a resume that throws is reported, not thrown out of the timer', () => {
    const errors: [string, unknown][] = [];
    const timers = new ResumeTimers((key, error) => errors.push([key, error]));
    const consumer = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: 0 }).consumer({ groupId: 'g' });
    timers.schedule('t:0', 100, () => consumer.resume([{ topic: 't', partitions: [0] }]));
    expect(() => jest.advanceTimersByTime(100)).not.toThrow();
    expect(errors).toHaveLength(1);
    expect(errors[0][0]).toBe('t:0');
    expect(String(errors[0][1])).toContain('Consumer group was not initialized');
    expect(timers.size).toBe(0);
  });

  test('runs each resume once after its delay; a new schedule for the same partition replaces the old one', () => {
    const resumed: string[] = [];
    const timers = new ResumeTimers(() => undefined);
    timers.schedule('t:0', 100, () => resumed.push('first'));
    timers.schedule('t:1', 150, () => resumed.push('t:1'));
    timers.schedule('t:0', 200, () => resumed.push('second'));
    jest.advanceTimersByTime(199);
    expect(resumed).toEqual(['t:1']);
    jest.advanceTimersByTime(1);
    expect(resumed).toEqual(['t:1', 'second']);
    jest.advanceTimersByTime(1_000);
    expect(resumed).toEqual(['t:1', 'second']);
  });

  test('clear cancels every pending resume', () => {
    const resume = jest.fn();
    const timers = new ResumeTimers(() => undefined);
    timers.schedule('t:0', 100, resume);
    timers.schedule('t:1', 100, resume);
    timers.clear();
    jest.advanceTimersByTime(1_000);
    expect(resume).not.toHaveBeenCalled();
    expect(timers.size).toBe(0);
  });

  test('timers do not keep the process alive (a shutdown drain may leave one behind)', () => {
    jest.useRealTimers();
    const timers = new ResumeTimers(() => undefined);
    const spy = jest.spyOn(globalThis, 'setTimeout');
    timers.schedule('t:0', 60_000, () => undefined);
    const timer = spy.mock.results[0].value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    timers.clear();
    spy.mockRestore();
  });
});
