import { Logger } from '@nestjs/common';
import type { KafkaModuleOptions } from '../kafka.options.js';
import { Kafka, KafkaLogLevel, type LogEntry, type RetryOptions } from './kafkajs.js';
import { isSecurityLogLine } from './security-failures.js';

/** Explicit client retry: under jest (NODE_ENV=test) kafkajs would otherwise switch to other defaults. */
export const DEFAULT_CLIENT_RETRY: RetryOptions = {
  initialRetryTime: 300,
  maxRetryTime: 30_000,
  retries: 8,
  factor: 0.2,
  multiplier: 2,
};

/**
 * kafkajs warnings about choices this library makes on purpose, logged at debug instead: the producer bounds the
 * retries of its idempotent producer so that a send to a missing topic fails instead of retrying forever.
 */
const DELIBERATE = new Set(['Limiting retries for the idempotent producer may invalidate EoS guarantees']);

/** kafkajs log entries go through Nest's Logger, at the matching level, under the kafkajs namespace. */
function nestLogCreator() {
  const loggers = new Map<string, Logger>();
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const context = `kafkajs${namespace ? `:${namespace}` : ''}`;
      let logger = loggers.get(context);
      if (!logger) loggers.set(context, (logger = new Logger(context)));
      const { message, ...extra } = log;
      const line = Object.keys(extra).length > 0 ? `${message} ${JSON.stringify(extra)}` : message;
      // A wrong password or untrusted certificate is reported once by the library (KafkaSecurity), not per retry.
      if (isSecurityLogLine(message, extra)) logger.debug(line);
      else if (level === KafkaLogLevel.ERROR) logger.error(line);
      else if (level === KafkaLogLevel.WARN && !DELIBERATE.has(message)) logger.warn(line);
      else if (level === KafkaLogLevel.INFO) logger.log(line);
      else logger.debug(line);
    };
}

/**
 * Consumers get a shorter budget by default: kafkajs retries a dead group coordinator's address until the budget
 * is spent, and only the consumer's restart looks the coordinator up again (with the client default, a member
 * stalled about 75 s after its coordinator broker died; the fault suite measures it). Producers keep the longer
 * one, so that a send is not abandoned in the middle of a leader election.
 */
export const DEFAULT_CONSUMER_RETRY: RetryOptions = {
  ...DEFAULT_CLIENT_RETRY,
  maxRetryTime: 3_000,
  retries: 5,
};

export function clientRetryOf(options: KafkaModuleOptions): RetryOptions {
  return { ...DEFAULT_CLIENT_RETRY, ...options.clientRetry };
}

export function consumerRetryOf(options: KafkaModuleOptions): RetryOptions {
  return { ...DEFAULT_CONSUMER_RETRY, ...options.clientRetry };
}

export function createKafkaClient(options: KafkaModuleOptions): Kafka {
  return new Kafka({
    brokers: options.brokers,
    clientId: options.clientId ?? 'nest-kafka-groups',
    ssl: options.ssl,
    sasl: options.sasl,
    connectionTimeout: options.connectionTimeout,
    requestTimeout: options.requestTimeout,
    retry: clientRetryOf(options),
    logLevel: KafkaLogLevel.INFO,
    logCreator: nestLogCreator(),
  });
}
