/** One sample of a partition's lag: [epoch milliseconds, lag]. */
export type LagPoint = [number, number];

/**
 * Lag of each partition over the last `historyMs`, per group: at most `capacity` points per partition (older ones
 * are dropped), and partitions not sampled for a whole history (a topic no longer consumed) are forgotten.
 */
export class LagHistory {
  /** group -> "topic:partition" -> points, oldest first. */
  private readonly groups = new Map<string, Map<string, LagPoint[]>>();
  private readonly capacity: number;

  constructor(
    private readonly historyMs: number,
    sampleIntervalMs: number,
  ) {
    this.capacity = Math.ceil(historyMs / sampleIntervalMs) + 1;
  }

  record(
    groupId: string,
    at: number,
    lags: Iterable<{ topic: string; partition: number; lag: number }>,
  ): void {
    let series = this.groups.get(groupId);
    if (!series) this.groups.set(groupId, (series = new Map()));
    for (const { topic, partition, lag } of lags) {
      const key = `${topic}:${partition}`;
      let points = series.get(key);
      if (!points) series.set(key, (points = []));
      points.push([at, lag]);
      if (points.length > this.capacity) points.splice(0, points.length - this.capacity);
    }
    const oldest = at - this.historyMs;
    for (const [key, points] of series) {
      while (points.length > 0 && points[0][0] < oldest) points.shift();
      if (points.length === 0) series.delete(key);
    }
  }

  /** "topic:partition" -> points of one group (copies). */
  of(groupId: string): Record<string, LagPoint[]> {
    const result: Record<string, LagPoint[]> = {};
    for (const [key, points] of this.groups.get(groupId) ?? []) result[key] = points.slice();
    return result;
  }

  /** Drops the groups that no longer run here. */
  retain(groupIds: ReadonlySet<string>): void {
    for (const groupId of this.groups.keys()) if (!groupIds.has(groupId)) this.groups.delete(groupId);
  }
}
