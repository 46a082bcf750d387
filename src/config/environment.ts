import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsPositive,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) => (typeof value === 'string' ? Number(value) : value);
const BOOLEANS: Record<string, boolean> = {
  true: true,
  '1': true,
  yes: true,
  false: false,
  '0': false,
  no: false,
};
/** Unknown spellings stay strings, so @IsBoolean rejects them instead of silently reading false. */
const toBool = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? (BOOLEANS[value.trim().toLowerCase()] ?? value) : value;

/** Every variable the service reads; see .env.example. Validated at start-up with class-validator. */
export class Environment {
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsString()
  @Matches(/^[^\s:,]+:\d+(,[^\s:,]+:\d+)*$/, { message: 'KAFKA_BROKERS must be "host:port[,host:port...]"' })
  KAFKA_BROKERS = '127.0.0.1:9092';

  @IsString()
  @MinLength(1)
  KAFKA_CLIENT_ID = 'flight-tracker';

  @IsString()
  @MinLength(1)
  AIRNAV_GROUP_ID = 'airnav';

  @IsString()
  @MinLength(1)
  AIRNAV_TOPIC = 'live-flight-airnav';

  @IsString()
  @MinLength(1)
  FLIGHT24_GROUP_ID = 'flight24';

  @IsString()
  @MinLength(1)
  FLIGHT24_TOPIC = 'live-flight-flight24';

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  KAFKA_GROUP_CONCURRENCY = 1;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  KAFKA_FROM_BEGINNING = true;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  KAFKA_SHUTDOWN_TIMEOUT_MS = 30_000;

  /** Partitions of the flight topics (and their dead-letter topics) when the service creates them at start. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  KAFKA_TOPIC_PARTITIONS = 3;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  KAFKA_TOPIC_REPLICATION_FACTOR = 1;

  /** Bound on the broker round trip of GET /health. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  KAFKA_HEALTH_TIMEOUT_MS = 3_000;

  /** Aircraft each flight module keeps (the one updated longest ago is dropped first). */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  FLIGHTS_MAX_AIRCRAFT = 10_000;

  /** How far ahead of this host's clock a position's `ts` may be; a later one is dead-lettered. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  FLIGHTS_MAX_CLOCK_SKEW_MS = 60_000;

  /** Simulated flight feed: produces positions to both flight topics. */
  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  FEED_ENABLED = false;

  /** Messages per second to each flight topic. */
  @IsOptional()
  @Transform(toInt)
  @IsNumber()
  @IsPositive()
  @Max(10_000)
  FEED_RATE_PER_SEC = 5;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000)
  FEED_AIRCRAFT = 8;

  @IsOptional()
  @IsIn(['error', 'warn', 'log', 'debug', 'verbose'])
  LOG_LEVEL: 'error' | 'warn' | 'log' | 'debug' | 'verbose' = 'log';
}

/** For ConfigModule's `validate`: defaults applied, numbers and booleans converted, errors name the variable. */
export function validateEnvironment(raw: Record<string, unknown>): Environment {
  // `VAR=` (empty) in a .env or compose file means "not set": the default applies.
  const given = Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== ''));
  const environment = plainToInstance(Environment, given, { exposeDefaultValues: true });
  const errors = validateSync(environment, { skipMissingProperties: false, whitelist: false });
  if (errors.length > 0) {
    const details = errors.map(
      (e) => `${e.property}=${JSON.stringify(e.value)}: ${Object.values(e.constraints ?? {}).join(', ')}`,
    );
    throw new Error(`Invalid environment: ${details.join('; ')}`);
  }
  return environment;
}
