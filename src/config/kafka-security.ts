import { readFileSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import type { KafkaModuleOptions } from 'nest-kafka-groups';
import type { Environment } from './environment.js';

const SECURITY_VARIABLES = [
  'KAFKA_SSL',
  'KAFKA_SSL_REJECT_UNAUTHORIZED',
  'KAFKA_SSL_CA_FILE',
  'KAFKA_SSL_CERT_FILE',
  'KAFKA_SSL_KEY_FILE',
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
] as const;
type SecurityVariable = (typeof SECURITY_VARIABLES)[number];

/**
 * The `ssl` and `sasl` options of KafkaModule.forRoot from the validated environment (validateEnvironment has
 * checked that the files are readable and the credentials complete). The files are read once, at start-up.
 */
export function kafkaSecurityOf(
  get: <K extends SecurityVariable>(name: K) => Environment[K],
): Pick<KafkaModuleOptions, 'ssl' | 'sasl'> {
  const env = Object.fromEntries(SECURITY_VARIABLES.map((name) => [name, get(name)])) as Pick<
    Environment,
    SecurityVariable
  >;
  const options: Pick<KafkaModuleOptions, 'ssl' | 'sasl'> = {};
  if (env.KAFKA_SSL) {
    if (!env.KAFKA_SSL_REJECT_UNAUTHORIZED) {
      new Logger('KafkaSecurity').warn(
        'KAFKA_SSL_REJECT_UNAUTHORIZED=false: any broker certificate is accepted (development clusters only)',
      );
    }
    options.ssl = {
      rejectUnauthorized: env.KAFKA_SSL_REJECT_UNAUTHORIZED,
      ...(env.KAFKA_SSL_CA_FILE && { ca: [readPem('KAFKA_SSL_CA_FILE', env.KAFKA_SSL_CA_FILE)] }),
      ...(env.KAFKA_SSL_CERT_FILE && { cert: readPem('KAFKA_SSL_CERT_FILE', env.KAFKA_SSL_CERT_FILE) }),
      ...(env.KAFKA_SSL_KEY_FILE && { key: readPem('KAFKA_SSL_KEY_FILE', env.KAFKA_SSL_KEY_FILE) }),
    };
  }
  const username = env.KAFKA_SASL_USERNAME;
  const password = env.KAFKA_SASL_PASSWORD;
  switch (env.KAFKA_SASL_MECHANISM) {
    case 'plain':
      options.sasl = { mechanism: 'plain', username, password };
      break;
    case 'scram-sha-256':
      options.sasl = { mechanism: 'scram-sha-256', username, password };
      break;
    case 'scram-sha-512':
      options.sasl = { mechanism: 'scram-sha-512', username, password };
      break;
    case '':
      break;
  }
  return options;
}

/** The file's text; a failure names the variable (and the path, never the content). */
function readPem(variable: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(
      `${variable}=${JSON.stringify(file)}: cannot read the file (${(error as NodeJS.ErrnoException).code})`,
      { cause: error },
    );
  }
}
