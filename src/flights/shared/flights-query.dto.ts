import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export const DEFAULT_FLIGHTS_LIMIT = 100;
export const MAX_FLIGHTS_LIMIT = 1_000;

/** `GET /<module>/flights?limit=N`: how many aircraft to list, the most recently updated first. */
export class FlightsQueryDto {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_FLIGHTS_LIMIT)
  limit: number = DEFAULT_FLIGHTS_LIMIT;
}
