import type { FlightPositionDto } from './flight-position.dto.js';

/** Latest position per aircraft; a newer timestamp wins, so a redelivered old message never moves a flight back. */
export class LatestPositionsStore {
  private readonly positions = new Map<string, FlightPositionDto>();

  update(position: FlightPositionDto): void {
    const current = this.positions.get(position.icao24);
    if (!current || current.ts <= position.ts) this.positions.set(position.icao24, position);
  }

  all(): FlightPositionDto[] {
    return [...this.positions.values()].sort((a, b) => a.icao24.localeCompare(b.icao24));
  }
}
