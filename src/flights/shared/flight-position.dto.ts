import { IsInt, IsNumber, IsString, Matches, Max, MaxLength, Min } from 'class-validator';

/** One live position of one aircraft, as both feeds publish it (the message key is `icao24`). */
export class FlightPositionDto {
  @IsString()
  @Matches(/^[0-9a-f]{6}$/, { message: 'icao24 must be 6 lowercase hex digits' })
  icao24!: string;

  @IsString()
  @MaxLength(8)
  callsign!: string;

  @IsNumber()
  @Min(-90)
  @Max(90)
  lat!: number;

  @IsNumber()
  @Min(-180)
  @Max(180)
  lon!: number;

  /** Metres. */
  @IsNumber()
  altitude!: number;

  /** Ground speed, m/s. */
  @IsNumber()
  @Min(0)
  speed!: number;

  @IsNumber()
  @Min(0)
  @Max(360)
  heading!: number;

  /** Epoch milliseconds. */
  @IsInt()
  @Min(0)
  ts!: number;
}
