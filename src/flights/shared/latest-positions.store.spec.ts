import { describe, expect, test } from '@jest/globals';
import type { FlightPositionDto } from './flight-position.dto.js';
import { LatestPositionsStore } from './latest-positions.store.js';

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

describe('LatestPositionsStore', () => {
  test('starts empty', () => {
    expect(new LatestPositionsStore().all()).toEqual([]);
  });

  test('keeps one position per aircraft, the newer timestamp winning', () => {
    const store = new LatestPositionsStore();
    store.update(position('3c6444', 1000, { lat: 50 }));
    store.update(position('3c6444', 2000, { lat: 51 }));
    expect(store.all()).toEqual([position('3c6444', 2000, { lat: 51 })]);
  });

  test('an older redelivery does not move the flight back', () => {
    const store = new LatestPositionsStore();
    store.update(position('3c6444', 2000, { lat: 51 }));
    store.update(position('3c6444', 1000, { lat: 50 }));
    expect(store.all()).toEqual([position('3c6444', 2000, { lat: 51 })]);
  });

  test('the same timestamp again replaces the stored position', () => {
    const store = new LatestPositionsStore();
    store.update(position('3c6444', 2000, { callsign: 'OLD' }));
    store.update(position('3c6444', 2000, { callsign: 'NEW' }));
    expect(store.all().map((p) => p.callsign)).toEqual(['NEW']);
  });

  test('aircraft are independent of each other', () => {
    const store = new LatestPositionsStore();
    store.update(position('aaaaaa', 5000));
    store.update(position('bbbbbb', 1000));
    store.update(position('aaaaaa', 4000));
    expect(store.all().map((p) => [p.icao24, p.ts])).toEqual([
      ['aaaaaa', 5000],
      ['bbbbbb', 1000],
    ]);
  });

  test('all() is sorted by icao24, whatever the arrival order', () => {
    const store = new LatestPositionsStore();
    for (const icao24 of ['4b1805', '3c6444', 'a0b1c2', '00ffee', '4b1800'])
      store.update(position(icao24, 1));
    expect(store.all().map((p) => p.icao24)).toEqual(['00ffee', '3c6444', '4b1800', '4b1805', 'a0b1c2']);
  });

  test('all() returns a snapshot, not the live collection', () => {
    const store = new LatestPositionsStore();
    store.update(position('3c6444', 1));
    const snapshot = store.all();
    snapshot.length = 0;
    store.update(position('4b1805', 1));
    expect(snapshot).toEqual([]);
    expect(store.all()).toHaveLength(2);
  });
});
