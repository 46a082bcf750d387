/**
 * The validated pair (c+v, d+v): the data set's flight position as a class-validator DTO, with the example service's
 * rules where its FlightPositionDto has the field (src/flights/shared/flight-position.dto.ts) and one rule for each
 * other field, and the example's global ValidationPipe options (src/config/validation-pipe.ts).
 */
import { ValidationPipe } from '@nestjs/common';
import { importLibraryValidation } from './nest.mjs';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';

export class FlightPositionDto {}

const rules = {
  seq: [IsInt(), Min(0)],
  icao24: [IsString(), Matches(/^[0-9a-f]{6}$/, { message: 'icao24 must be 6 lowercase hex digits' })],
  callsign: [IsString(), MaxLength(8)],
  registration: [IsString(), MaxLength(10)],
  aircraftType: [IsString(), Length(3, 4)],
  origin: [IsString(), Length(4, 4)],
  destination: [IsString(), Length(4, 4)],
  lat: [IsNumber(), Min(-90), Max(90)],
  lon: [IsNumber(), Min(-180), Max(180)],
  alt: [IsNumber()],
  gs: [IsNumber(), Min(0)],
  track: [IsNumber(), Min(0), Max(360)],
  vr: [IsInt()],
  squawk: [IsString(), Matches(/^\d{4}$/)],
  onGround: [IsBoolean()],
  source: [IsIn(['ADSB', 'MLAT'])],
  receiver: [IsString(), MaxLength(16)],
  ts: [IsInt(), Min(0)],
};
for (const [property, decorators] of Object.entries(rules)) {
  for (const decorator of decorators) decorator(FlightPositionDto.prototype, property);
}

/** What TypeScript's emitDecoratorMetadata would write for `onFlight(flight: FlightPositionDto, ctx: Context)`. */
export function declareParamTypes(controller, method) {
  Reflect.defineMetadata('design:paramtypes', [FlightPositionDto, Object], controller.prototype, method);
}

/** The example's global ValidationPipe options (src/config/validation-pipe.ts). */
export const VALIDATION_OPTIONS = { transform: true, whitelist: true, forbidNonWhitelisted: true };

/**
 * The validated systems' global pipe: Nest's ValidationPipe (`plain`, c+v and d+vp), or the library's
 * CompiledValidationPipe (`compiled`, d+v) from the build under test, with the same options.
 */
export async function createValidationPipe(kind, env = process.env) {
  if (kind === 'compiled') {
    const { CompiledValidationPipe } = await importLibraryValidation(env);
    return new CompiledValidationPipe(VALIDATION_OPTIONS);
  }
  return new ValidationPipe(VALIDATION_OPTIONS);
}
