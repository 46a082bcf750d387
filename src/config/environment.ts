import { plainToInstance, Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, MinLength, validateSync } from 'class-validator';

const toInt = ({ value }: { value: unknown }) => (value === undefined || value === '' ? undefined : Number(value));
const toBool = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : value === true || value === 'true' || value === '1';

/** Every variable the service reads; see .env.example. Validated at start-up with class-validator. */
export class Environment {
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  PORT = 3000;

  @IsString() @Matches(/^[^\s:,]+:\d+(,[^\s:,]+:\d+)*$/, { message: 'KAFKA_BROKERS must be "host:port[,host:port...]"' })
  KAFKA_BROKERS = '127.0.0.1:9092';

  @IsString() @MinLength(1)
  KAFKA_CLIENT_ID = 'flight-tracker';

  @IsString() @MinLength(1)
  AIRNAV_GROUP_ID = 'airnav';

  @IsString() @MinLength(1)
  AIRNAV_TOPIC = 'live-flight-airnav';

  @IsString() @MinLength(1)
  FLIGHT24_GROUP_ID = 'flight24';

  @IsString() @MinLength(1)
  FLIGHT24_TOPIC = 'live-flight-flight24';

  @IsOptional() @Transform(toInt) @IsInt() @Min(1)
  KAFKA_GROUP_CONCURRENCY = 1;

  @IsOptional() @Transform(toBool) @IsBoolean()
  KAFKA_FROM_BEGINNING = true;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1)
  KAFKA_SHUTDOWN_TIMEOUT_MS = 30_000;

  @IsOptional() @IsIn(['error', 'warn', 'log', 'debug', 'verbose'])
  LOG_LEVEL: 'error' | 'warn' | 'log' | 'debug' | 'verbose' = 'log';
}

/** For ConfigModule's `validate`: defaults applied, numbers and booleans converted, errors name the variable. */
export function validateEnvironment(raw: Record<string, unknown>): Environment {
  const environment = plainToInstance(Environment, raw, { exposeDefaultValues: true });
  const errors = validateSync(environment, { skipMissingProperties: false, whitelist: false });
  if (errors.length > 0) {
    const details = errors.map((e) => `${e.property}=${JSON.stringify(e.value)}: ${Object.values(e.constraints ?? {}).join(', ')}`);
    throw new Error(`Invalid environment: ${details.join('; ')}`);
  }
  return environment;
}
