import { describe, expect, test } from '@jest/globals';
import { LagHistory } from './lag-history.js';
import { resolveUiOptions } from './kafka-ui.options.js';

describe('LagHistory', () => {
  test('keeps at most the history window per partition, oldest first', () => {
    const history = new LagHistory(10_000, 2_000);
    for (let at = 0; at <= 20_000; at += 2_000)
      history.record('g', at, [{ topic: 't', partition: 0, lag: at / 1000 }]);
    const points = history.of('g')['t:0'];
    expect(points[0]).toEqual([10_000, 10]);
    expect(points.at(-1)).toEqual([20_000, 20]);
    expect(points).toHaveLength(6);
  });

  test('forgets partitions no longer sampled for a whole window, and groups that went away', () => {
    const history = new LagHistory(4_000, 1_000);
    history.record('g', 0, [
      { topic: 't', partition: 0, lag: 1 },
      { topic: 't', partition: 1, lag: 1 },
    ]);
    history.record('g', 5_000, [{ topic: 't', partition: 0, lag: 2 }]);
    expect(Object.keys(history.of('g'))).toEqual(['t:0']);
    history.retain(new Set(['other']));
    expect(history.of('g')).toEqual({});
  });

  test('of() hands out copies', () => {
    const history = new LagHistory(4_000, 1_000);
    history.record('g', 0, [{ topic: 't', partition: 0, lag: 1 }]);
    history.of('g')['t:0'].push([1, 1]);
    expect(history.of('g')['t:0']).toHaveLength(1);
  });
});

describe('resolveUiOptions', () => {
  test('defaults: a sample every 2 s, 5 minutes of history', () => {
    expect(resolveUiOptions()).toEqual({ sampleIntervalMs: 2_000, historyMs: 300_000 });
  });

  test('bad values name the setting', () => {
    expect(() => resolveUiOptions({ sampleIntervalMs: 10 })).toThrow(
      'Invalid Kafka setting "KafkaUiModule.forRoot.sampleIntervalMs": expected an integer >= 250, got 10',
    );
    expect(() => resolveUiOptions({ sampleIntervalMs: 5_000, historyMs: 1_000 })).toThrow(
      /"KafkaUiModule.forRoot.historyMs": expected an integer from sampleIntervalMs \(5000\) to 3600000, got 1000/,
    );
  });
});
