import { LRUCache } from 'lru-cache';
import type { FlightPositionDto } from '../shared/flight-position.dto.js';

/** One point of an aircraft's track, with the feed (topic) it came from. */
export interface TrackPoint {
  ts: number;
  lat: number;
  lon: number;
  altitude: number;
  source: string;
}

export interface TrackArchiveOptions {
  /** Aircraft kept; the one updated longest ago is dropped first. */
  maxAircraft: number;
  /** Points kept per aircraft, the most recent. */
  maxPoints: number;
}

/**
 * Recent track per aircraft, appended in bulk by the batch handler. A point is added only when it is newer than
 * the aircraft's last one, so a redelivered batch (after a crash or rebalance) adds nothing twice.
 */
export class TrackArchive {
  private readonly tracks: LRUCache<string, TrackPoint[]>;

  constructor(private readonly options: TrackArchiveOptions) {
    this.tracks = new LRUCache({ max: options.maxAircraft });
  }

  get aircraft(): number {
    return this.tracks.size;
  }

  /** Appends the positions of one batch call (in offset order); returns how many points were added. */
  append(source: string, positions: readonly FlightPositionDto[]): number {
    let added = 0;
    for (const { icao24, ts, lat, lon, altitude } of positions) {
      let track = this.tracks.get(icao24);
      if (!track) {
        track = [];
        this.tracks.set(icao24, track);
      }
      if (track.length > 0 && track[track.length - 1].ts >= ts) continue;
      track.push({ ts, lat, lon, altitude, source });
      if (track.length > this.options.maxPoints) track.splice(0, track.length - this.options.maxPoints);
      added++;
    }
    return added;
  }

  /** The aircraft's points, oldest first; undefined for an aircraft not seen (or dropped). */
  track(icao24: string): readonly TrackPoint[] | undefined {
    return this.tracks.peek(icao24);
  }
}
