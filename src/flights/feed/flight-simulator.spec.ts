import { describe, expect, test } from '@jest/globals';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { FlightPositionDto } from '../shared/flight-position.dto.js';
import { FlightSimulator } from './flight-simulator.js';

/** A deterministic generator, so a failure can be replayed. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function metresBetween(a: FlightPositionDto, b: FlightPositionDto): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.sqrt(h));
}

describe('FlightSimulator', () => {
  test('every report passes the validation the flight handlers apply', () => {
    const start = 1_700_000_000_000;
    const simulator = new FlightSimulator(25, start, seeded(1));
    for (let i = 0; i < 5_000; i++) {
      const report = simulator.report(start + i * 1_000);
      const errors = validateSync(plainToInstance(FlightPositionDto, report));
      expect(errors).toEqual([]);
    }
  });

  test('the aircraft take turns and have distinct icao24 addresses and callsigns', () => {
    const simulator = new FlightSimulator(1_000, 0, seeded(2));
    const reports = Array.from({ length: 1_000 }, () => simulator.report(1_000));
    expect(new Set(reports.map((r) => r.icao24)).size).toBe(1_000);
    expect(new Set(reports.map((r) => r.callsign)).size).toBe(1_000);
    expect(simulator.report(2_000).icao24).toBe(reports[0].icao24);
  });

  test('positions move at the reported ground speed, and timestamps never go back', () => {
    const start = 1_700_000_000_000;
    const simulator = new FlightSimulator(1, start, seeded(3));
    let previous = simulator.report(start);
    for (let second = 10; second <= 600; second += 10) {
      const report = simulator.report(start + second * 1_000);
      expect(report.ts).toBeGreaterThan(previous.ts);
      const speed = metresBetween(previous, report) / 10;
      // Within rounding of the 5-decimal coordinates and the speed's drift over the interval.
      expect(speed).toBeGreaterThan(report.speed * 0.9);
      expect(speed).toBeLessThan(report.speed * 1.1);
      previous = report;
    }
    // A climb towards cruise level.
    expect(previous.altitude).toBeGreaterThan(3_000);
  });

  test('a report asked for an earlier time keeps the aircraft where it was', () => {
    const simulator = new FlightSimulator(1, 10_000, seeded(4));
    const first = simulator.report(20_000);
    const again = simulator.report(15_000);
    expect(again.ts).toBe(first.ts);
    expect([again.lat, again.lon]).toEqual([first.lat, first.lon]);
  });
});
