import { describe, expect, it } from '@jest/globals';
import { partitionCounts, prepareLatencyMessages } from './dataset.mjs';
import { PARTITIONS } from './settings.mjs';

describe('partitionCounts: what the data set step checks each partition of a data set topic against', () => {
  it("is the default partitioner's placement of each message, counted per partition", () => {
    // More messages than aircraft: the keys repeat, as in every run's data set.
    const count = 12_345;
    const placed = new Array(PARTITIONS).fill(0);
    for (const partition of prepareLatencyMessages(count).partitionOf) placed[partition]++;
    expect(partitionCounts(count)).toEqual(placed);
    expect(placed.reduce((sum, n) => sum + n, 0)).toBe(count);
    expect(placed.every((n) => n > 0)).toBe(true);
  });

  it('counts over the partitions asked for', () => {
    const placed = new Array(3).fill(0);
    for (const partition of prepareLatencyMessages(700, 3).partitionOf) placed[partition]++;
    expect(partitionCounts(700, 3)).toEqual(placed);
  });
});
