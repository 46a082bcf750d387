import type { FlightPositionDto } from '../shared/flight-position.dto.js';

/** Where the simulated aircraft take off: airline prefix, a real ICAO 24-bit address, airport, initial heading. */
const DEPARTURES = [
  { airline: 'DLH', icao24: '3c6444', lat: 50.0379, lon: 8.5622, heading: 45 },
  { airline: 'BAW', icao24: '406a93', lat: 51.47, lon: -0.4543, heading: 290 },
  { airline: 'AFR', icao24: '39ceaa', lat: 49.0097, lon: 2.5479, heading: 160 },
  { airline: 'KLM', icao24: '484161', lat: 52.3105, lon: 4.7683, heading: 250 },
  { airline: 'RYR', icao24: '4ca7b5', lat: 53.4264, lon: -6.2499, heading: 120 },
  { airline: 'SAS', icao24: '4ac9e5', lat: 55.618, lon: 12.656, heading: 30 },
  { airline: 'IBE', icao24: '3433c5', lat: 40.4983, lon: -3.5676, heading: 210 },
  { airline: 'UAE', icao24: '896477', lat: 25.2532, lon: 55.3657, heading: 310 },
  { airline: 'DAL', icao24: 'a1b2c3', lat: 33.6407, lon: -84.4277, heading: 60 },
  { airline: 'QFA', icao24: '7c6b2d', lat: -33.9399, lon: 151.1753, heading: 300 },
] as const;

const METRES_PER_DEGREE = 111_320;
const MAX_ABS_LATITUDE = 75;
const CRUISE_SPEED_MS = 230;
const CLIMB_RATE_MS = 12;
const MAX_TURN_RATE_DEG_S = 1.5;

interface Aircraft {
  icao24: string;
  callsign: string;
  lat: number;
  lon: number;
  altitude: number;
  targetAltitude: number;
  speed: number;
  heading: number;
  /** Degrees per second; drifts slowly so tracks curve gently. */
  turnRate: number;
  ts: number;
}

/**
 * A handful of aircraft flying plausible tracks: cruise speed, gentle turns, climbs and descents between flight
 * levels, positions advanced by the time elapsed since their last report. Pure: the feed service does the I/O.
 */
export class FlightSimulator {
  private readonly aircraft: Aircraft[];
  private next = 0;

  constructor(
    count: number,
    startedAt = Date.now(),
    private readonly random: () => number = Math.random,
  ) {
    this.aircraft = Array.from({ length: count }, (_, i) => this.depart(i, startedAt));
  }

  get size(): number {
    return this.aircraft.length;
  }

  /** The next aircraft in turn reports its position at `now` (epoch ms). */
  report(now = Date.now()): FlightPositionDto {
    const plane = this.aircraft[this.next];
    this.next = (this.next + 1) % this.aircraft.length;
    this.advance(plane, Math.max(plane.ts, Math.floor(now)));
    return {
      icao24: plane.icao24,
      callsign: plane.callsign,
      lat: round(plane.lat, 5),
      lon: round(plane.lon, 5),
      altitude: Math.round(plane.altitude),
      speed: round(plane.speed, 1),
      heading: round(plane.heading, 1) % 360,
      ts: plane.ts,
    };
  }

  private depart(index: number, now: number): Aircraft {
    const base = DEPARTURES[index % DEPARTURES.length];
    const lap = Math.floor(index / DEPARTURES.length);
    const icao24 =
      lap === 0
        ? base.icao24
        : ((parseInt(base.icao24, 16) + lap * 0x101) & 0xffffff).toString(16).padStart(6, '0');
    return {
      icao24,
      callsign: `${base.airline}${100 + index}`,
      // Later rounds leave from the same airports a little apart and in other directions.
      lat: base.lat + lap * 0.05,
      lon: base.lon + lap * 0.05,
      altitude: 1_000 + this.random() * 2_000,
      targetAltitude: flightLevel(this.random()),
      speed: CRUISE_SPEED_MS * (0.85 + this.random() * 0.15),
      heading: (base.heading + lap * 37) % 360,
      turnRate: 0,
      ts: now,
    };
  }

  private advance(plane: Aircraft, now: number): void {
    const dt = (now - plane.ts) / 1000;
    plane.ts = now;
    if (dt <= 0) return;

    plane.turnRate = clamp(
      plane.turnRate + (this.random() - 0.5) * 0.4 * dt,
      -MAX_TURN_RATE_DEG_S,
      MAX_TURN_RATE_DEG_S,
    );
    plane.heading = normalizeHeading(plane.heading + plane.turnRate * dt);
    plane.speed = clamp(plane.speed + (this.random() - 0.5) * 2 * dt, 180, 260);

    const climb = clamp(plane.targetAltitude - plane.altitude, -CLIMB_RATE_MS * dt, CLIMB_RATE_MS * dt);
    plane.altitude += climb;
    if (Math.abs(plane.targetAltitude - plane.altitude) < 1 && this.random() < 0.01 * dt) {
      plane.targetAltitude = flightLevel(this.random());
    }

    const distance = plane.speed * dt;
    const radians = (plane.heading * Math.PI) / 180;
    plane.lat += (distance * Math.cos(radians)) / METRES_PER_DEGREE;
    plane.lon += (distance * Math.sin(radians)) / (METRES_PER_DEGREE * Math.cos((plane.lat * Math.PI) / 180));
    if (Math.abs(plane.lat) > MAX_ABS_LATITUDE) {
      // Turn back before the polar regions: mirror the heading north <-> south.
      plane.lat = Math.sign(plane.lat) * MAX_ABS_LATITUDE;
      plane.heading = normalizeHeading(180 - plane.heading);
    }
    plane.lon = ((((plane.lon + 180) % 360) + 360) % 360) - 180;
  }
}

/** A cruise flight level between FL300 and FL400, in metres. */
function flightLevel(random: number): number {
  return (300 + Math.floor(random * 11) * 10) * 30.48;
}

function normalizeHeading(heading: number): number {
  return ((heading % 360) + 360) % 360;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
