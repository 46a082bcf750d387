import { describe, expect, test } from '@jest/globals';
import type { FlightPositionDto } from '../shared/flight-position.dto.js';
import { TrackArchive } from './track-archive.js';

function position(icao24: string, ts: number, lat = 50): FlightPositionDto {
  return { icao24, callsign: 'DLH1', lat, lon: 8, altitude: 1000, speed: 200, heading: 90, ts };
}

describe('TrackArchive', () => {
  test('appends a batch to each aircraft, oldest first, with the feed it came from', () => {
    const archive = new TrackArchive({ maxAircraft: 10, maxPoints: 10 });
    expect(
      archive.append('airnav', [position('aaaaaa', 1), position('bbbbbb', 1), position('aaaaaa', 2)]),
    ).toBe(3);
    expect(archive.append('flight24', [position('aaaaaa', 3)])).toBe(1);
    expect(archive.track('aaaaaa')!.map((p) => [p.ts, p.source])).toEqual([
      [1, 'airnav'],
      [2, 'airnav'],
      [3, 'flight24'],
    ]);
    expect(archive.track('cccccc')).toBeUndefined();
  });

  test('a redelivered batch, or a point not newer than the last, adds nothing', () => {
    const archive = new TrackArchive({ maxAircraft: 10, maxPoints: 10 });
    const batch = [position('aaaaaa', 5), position('aaaaaa', 6)];
    archive.append('airnav', batch);
    expect(archive.append('airnav', batch)).toBe(0);
    expect(archive.append('flight24', [position('aaaaaa', 6, 51)])).toBe(0);
    expect(archive.track('aaaaaa')!.map((p) => p.ts)).toEqual([5, 6]);
  });

  test('keeps the most recent maxPoints per aircraft and maxAircraft aircraft (least recently updated dropped)', () => {
    const archive = new TrackArchive({ maxAircraft: 2, maxPoints: 3 });
    archive.append(
      'airnav',
      [1, 2, 3, 4, 5].map((ts) => position('aaaaaa', ts)),
    );
    expect(archive.track('aaaaaa')!.map((p) => p.ts)).toEqual([3, 4, 5]);
    archive.append('airnav', [position('bbbbbb', 1)]);
    archive.append('airnav', [position('aaaaaa', 6)]);
    archive.append('airnav', [position('cccccc', 1)]);
    expect(archive.aircraft).toBe(2);
    expect(archive.track('bbbbbb')).toBeUndefined();
    expect(archive.track('aaaaaa')).toBeDefined();
  });
});
