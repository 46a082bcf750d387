import { randomBytes } from 'node:crypto';

/** A position the example service's flight DTO accepts; `extra` adds or replaces fields. */
export function flightPosition(icao24: string, callsign: string, extra: Record<string, unknown> = {}) {
  return {
    icao24,
    callsign,
    lat: 47.4,
    lon: 8.5,
    altitude: 11_000,
    speed: 230,
    heading: 270,
    ts: Date.now(),
    ...extra,
  };
}

/** A random ICAO 24-bit address, as six hex digits. */
export function hexKey(): string {
  return randomBytes(3).toString('hex');
}
