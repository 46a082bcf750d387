import { describe, expect, test } from '@jest/globals';
import { KafkaNonRetryableError } from 'nest-kafka-groups';
import type { FlightPositionDto } from './flight-position.dto.js';
import { FuturePositionError, LatestPositionsStore } from './latest-positions.store.js';

const NOW = 1_760_000_000_000;

function position(icao24: string, ts: number, extra: Partial<FlightPositionDto> = {}): FlightPositionDto {
  return {
    icao24,
    callsign: 'DLH123',
    lat: 50,
    lon: 8,
    altitude: 10_000,
    speed: 230,
    heading: 90,
    ts,
    ...extra,
  };
}

const store = (maxAircraft = 100, maxClockSkewMs = 60_000) =>
  new LatestPositionsStore({ maxAircraft, maxClockSkewMs });

describe('LatestPositionsStore', () => {
  test('starts empty', () => {
    expect(store().latest(10)).toEqual([]);
  });

  test('keeps one position per aircraft, the newer timestamp winning', () => {
    const s = store();
    s.update(position('3c6444', 1000, { lat: 50 }), NOW);
    s.update(position('3c6444', 2000, { lat: 51 }), NOW);
    expect(s.latest(10)).toEqual([position('3c6444', 2000, { lat: 51 })]);
  });

  test('an older redelivery does not move the flight back', () => {
    const s = store();
    s.update(position('3c6444', 2000, { lat: 51 }), NOW);
    s.update(position('3c6444', 1000, { lat: 50 }), NOW);
    expect(s.latest(10)).toEqual([position('3c6444', 2000, { lat: 51 })]);
  });

  test('the same timestamp again replaces the stored position', () => {
    const s = store();
    s.update(position('3c6444', 2000, { callsign: 'OLD' }), NOW);
    s.update(position('3c6444', 2000, { callsign: 'NEW' }), NOW);
    expect(s.latest(10).map((p) => p.callsign)).toEqual(['NEW']);
  });

  test('latest(limit): at most `limit` aircraft, the most recently updated first', () => {
    const s = store();
    for (const icao24 of ['aaaaaa', 'bbbbbb', 'cccccc']) s.update(position(icao24, 1), NOW);
    s.update(position('aaaaaa', 2), NOW);
    expect(s.latest(10).map((p) => p.icao24)).toEqual(['aaaaaa', 'cccccc', 'bbbbbb']);
    expect(s.latest(2).map((p) => p.icao24)).toEqual(['aaaaaa', 'cccccc']);
    expect(s.latest(0)).toEqual([]);
  });

  test('an older redelivery does not count as an update for the order either', () => {
    const s = store();
    s.update(position('aaaaaa', 5), NOW);
    s.update(position('bbbbbb', 5), NOW);
    s.update(position('aaaaaa', 1), NOW);
    expect(s.latest(10).map((p) => p.icao24)).toEqual(['bbbbbb', 'aaaaaa']);
  });

  test('holds at most maxAircraft, dropping the aircraft updated longest ago', () => {
    const s = store(3);
    for (const icao24 of ['aaaaaa', 'bbbbbb', 'cccccc']) s.update(position(icao24, 1), NOW);
    s.update(position('aaaaaa', 2), NOW);
    s.update(position('dddddd', 1), NOW);
    expect(s.size).toBe(3);
    expect(s.latest(10).map((p) => p.icao24)).toEqual(['dddddd', 'aaaaaa', 'cccccc']);
    for (let i = 0; i < 10_000; i++) s.update(position(i.toString(16).padStart(6, '0'), 1), NOW);
    expect(s.size).toBe(3);
  });

  test('a timestamp up to now plus the clock skew is accepted', () => {
    const s = store(100, 60_000);
    s.update(position('3c6444', NOW + 60_000), NOW);
    expect(s.latest(1)[0].ts).toBe(NOW + 60_000);
  });

  test('a timestamp beyond now plus the clock skew is refused, not retried, and changes nothing', () => {
    const s = store(100, 60_000);
    s.update(position('3c6444', NOW), NOW);
    let thrown: unknown;
    try {
      s.update(position('3c6444', 9e15), NOW);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(FuturePositionError);
    expect(thrown).toBeInstanceOf(KafkaNonRetryableError);
    expect((thrown as Error).message).toContain('FLIGHTS_MAX_CLOCK_SKEW_MS=60000');
    // The aircraft keeps moving with the next real position.
    s.update(position('3c6444', NOW + 1000, { lat: 52 }), NOW + 1000);
    expect(s.latest(1)[0]).toMatchObject({ ts: NOW + 1000, lat: 52 });
  });
});
