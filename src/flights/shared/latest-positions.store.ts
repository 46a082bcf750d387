import { LRUCache } from 'lru-cache';
import { KafkaNonRetryableError } from 'nest-kafka-groups';
import type { FlightPositionDto } from './flight-position.dto.js';

export interface LatestPositionsOptions {
  /** Aircraft kept; the one updated longest ago is dropped first. */
  maxAircraft: number;
  /** How far ahead of this host's clock a position's `ts` may be. */
  maxClockSkewMs: number;
}

/**
 * A position stamped further in the future than the clock skew allows: stored, it would hold its aircraft's
 * position still until that time (a newer timestamp wins). Not retried: the same message fails again.
 */
export class FuturePositionError extends KafkaNonRetryableError {
  constructor(icao24: string, ts: number, now: number, maxClockSkewMs: number) {
    super(
      `Position of ${icao24} is stamped ${ts}, more than FLIGHTS_MAX_CLOCK_SKEW_MS=${maxClockSkewMs} ms ` +
        `after now (${now})`,
    );
  }
}

/**
 * Latest position per aircraft, a bounded number of aircraft. A newer timestamp wins, so a redelivered old
 * message never moves a flight back; a timestamp beyond now plus the clock skew is refused.
 */
export class LatestPositionsStore {
  private readonly positions: LRUCache<string, FlightPositionDto>;

  constructor(private readonly options: LatestPositionsOptions) {
    this.positions = new LRUCache({ max: options.maxAircraft });
  }

  get size(): number {
    return this.positions.size;
  }

  update(position: FlightPositionDto, now = Date.now()): void {
    if (position.ts > now + this.options.maxClockSkewMs) {
      throw new FuturePositionError(position.icao24, position.ts, now, this.options.maxClockSkewMs);
    }
    // peek: looking at the current position must not count as a use of it.
    const current = this.positions.peek(position.icao24);
    if (!current || current.ts <= position.ts) this.positions.set(position.icao24, position);
  }

  /** Up to `limit` positions, the most recently updated aircraft first: no work in proportion to the store. */
  latest(limit: number): FlightPositionDto[] {
    const result: FlightPositionDto[] = [];
    if (limit <= 0) return result;
    for (const position of this.positions.values()) {
      result.push(position);
      if (result.length >= limit) break;
    }
    return result;
  }
}
