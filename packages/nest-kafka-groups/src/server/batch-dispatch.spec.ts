import { describe, expect, test } from '@jest/globals';
import { KafkaBatchFailedError } from '../errors/kafka-batch-failed.error.js';
import { batchOutcome } from './batch-dispatch.js';

describe('batchOutcome', () => {
  test('success: every message of the call is handled', () => {
    expect(batchOutcome(undefined, 7)).toEqual({ handled: 7 });
  });

  test('KafkaBatchFailedError(k): the k messages before it are handled, the one at k failed with the cause', () => {
    const cause = new Error('row 3 refused');
    expect(batchOutcome(new KafkaBatchFailedError(3, cause), 7)).toEqual({
      handled: 3,
      failure: { error: cause, whole: false },
    });
    expect(batchOutcome(new KafkaBatchFailedError(0, cause), 7)).toEqual({
      handled: 0,
      failure: { error: cause, whole: false },
    });
    expect(batchOutcome(new KafkaBatchFailedError(6, cause), 7).handled).toBe(6);
  });

  test('a KafkaBatchFailedError without a cause fails the message at k with itself', () => {
    const error = new KafkaBatchFailedError(2, undefined);
    expect(batchOutcome(error, 4)).toEqual({ handled: 2, failure: { error, whole: false } });
  });

  test.each([[-1], [7], [8], [1.5], [Number.NaN]])(
    'an index outside the call (%s) fails the whole call with the KafkaBatchFailedError itself',
    (index) => {
      const error = new KafkaBatchFailedError(index, new Error('x'));
      expect(batchOutcome(error, 7)).toEqual({ handled: 0, failure: { error, whole: true } });
    },
  );

  test('any other error fails the whole call', () => {
    const error = new Error('bulk insert refused');
    expect(batchOutcome(error, 7)).toEqual({ handled: 0, failure: { error, whole: true } });
    expect(batchOutcome('thrown string', 2)).toEqual({
      handled: 0,
      failure: { error: 'thrown string', whole: true },
    });
  });

  test('the error names the index and the cause', () => {
    const error = new KafkaBatchFailedError(4, new Error('row refused'));
    expect(error.message).toBe('Batch handler failed at index 4: row refused');
    expect(error.name).toBe('KafkaBatchFailedError');
    expect(error.index).toBe(4);
  });
});
