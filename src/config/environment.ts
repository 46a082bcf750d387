import { accessSync, constants } from 'node:fs';
import { Logger } from '@nestjs/common';
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
/** Whether an environment value spells true (as `@Transform(toBool)` reads it). */
export function isTrue(value: string | undefined): boolean {
  return value !== undefined && BOOLEANS[value.trim().toLowerCase()] === true;
}

/** Unknown spellings stay strings, so @IsBoolean rejects them instead of silently reading false. */
const toBool = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? (BOOLEANS[value.trim().toLowerCase()] ?? value) : value;
const toLower = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.trim().toLowerCase() : value;

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];
/** Never printed, not even in a validation error. */
const SECRETS = new Set(['KAFKA_SASL_PASSWORD', 'KAFKA_ADMIN_TOKEN']);
const SASL_CREDENTIALS = ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const;
const SSL_FILES = ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'] as const;

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

  /** The tracks module: a third group over both flight topics, with a batch handler (`GET /tracks/:icao24`). */
  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  TRACKS_ENABLED = false;

  @IsString()
  @MinLength(1)
  TRACKS_GROUP_ID = 'tracks';

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

  /** Create the groups' topics and dead-letter topics at start-up when missing (the library's `topics.create`). */
  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  KAFKA_CREATE_TOPICS = true;

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

  /**
   * Bearer token of the admin endpoints (POST /kafka/groups/:id/pause|resume|stop|start|seek); empty: those
   * endpoints are disabled. Never printed.
   */
  @IsString()
  @Matches(/^$|^\S{16,}$/, {
    message: 'KAFKA_ADMIN_TOKEN must be empty (admin endpoints off) or 16+ characters without spaces',
  })
  KAFKA_ADMIN_TOKEN = '';

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

  /** SASL mechanism; empty: no SASL. Needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD. */
  @IsOptional()
  @Transform(toLower)
  @IsIn(['', ...SASL_MECHANISMS])
  KAFKA_SASL_MECHANISM: SaslMechanism | '' = '';

  @IsString()
  KAFKA_SASL_USERNAME = '';

  @IsString()
  KAFKA_SASL_PASSWORD = '';

  /** TLS to the brokers (SASL_SSL with a mechanism, SSL without). */
  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  KAFKA_SSL = false;

  /** PEM file of the CA(s) that signed the brokers' certificates; empty: Node's default trusted CAs. */
  @IsString()
  KAFKA_SSL_CA_FILE = '';

  /** PEM client certificate and its private key for mutual TLS (both or neither). */
  @IsString()
  KAFKA_SSL_CERT_FILE = '';

  @IsString()
  KAFKA_SSL_KEY_FILE = '';

  /** false accepts any broker certificate: for a development cluster only (a warning says so at start). */
  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  KAFKA_SSL_REJECT_UNAUTHORIZED = true;
}

/** Settings that are valid one by one but not together, and files that cannot be read. */
function securityProblems(environment: Environment): string[] {
  const problems: string[] = [];
  const mechanism = environment.KAFKA_SASL_MECHANISM;
  for (const name of SASL_CREDENTIALS) {
    if (mechanism && environment[name] === '')
      problems.push(`${name} is required with KAFKA_SASL_MECHANISM=${mechanism}`);
    if (!mechanism && environment[name] !== '')
      problems.push(`${name} is set but KAFKA_SASL_MECHANISM is empty (no SASL)`);
  }
  for (const name of SSL_FILES) {
    const file = environment[name];
    if (file === '') continue;
    if (environment.KAFKA_SSL !== true) problems.push(`${name} is set but KAFKA_SSL is false`);
    try {
      accessSync(file, constants.R_OK);
    } catch (error) {
      problems.push(
        `${name}=${JSON.stringify(file)}: cannot read the file (${(error as NodeJS.ErrnoException).code})`,
      );
    }
  }
  if ((environment.KAFKA_SSL_CERT_FILE === '') !== (environment.KAFKA_SSL_KEY_FILE === '')) {
    problems.push('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mutual TLS needs both)');
  }
  return problems;
}

/** The environment is invalid; `problems` has one entry per variable, each naming it and the value given. */
export class EnvironmentError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid environment: ${problems.join('; ')}`);
    this.name = 'EnvironmentError';
  }
}

/** For ConfigModule's `validate`: defaults applied, numbers and booleans converted, errors name the variable. */
export function validateEnvironment(raw: Record<string, unknown>): Environment {
  // `VAR=` (empty) in a .env or compose file means "not set": the default applies.
  const given = Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== ''));
  const environment = plainToInstance(Environment, given, { exposeDefaultValues: true });
  const errors = validateSync(environment, { skipMissingProperties: false, whitelist: false });
  const details = errors.map((e) => {
    // The value as typed, not as converted (`"abc"`, not the NaN it became); secrets are never shown.
    const value = SECRETS.has(e.property) ? '(hidden)' : JSON.stringify(given[e.property]);
    return `${e.property}=${value}: ${Object.values(e.constraints ?? {}).join(', ')}`;
  });
  details.push(...securityProblems(environment));
  if (details.length > 0) throw new EnvironmentError(details);
  return environment;
}

/**
 * The service's `validate`: an invalid environment is a user's typo, not a crash, so each problem is one log line
 * (no stack trace), and the process exits with code 1 before Nest reports the error as an exception.
 */
export function validateEnvironmentOrExit(raw: Record<string, unknown>): Environment {
  try {
    return validateEnvironment(raw);
  } catch (error) {
    if (!(error instanceof EnvironmentError)) throw error;
    const logger = new Logger('Environment');
    for (const problem of error.problems) logger.error(`Invalid environment: ${problem}`);
    logger.error('Fix the variable(s) above (see .env.example) and start again');
    process.exit(1);
  }
}
