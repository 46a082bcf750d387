import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BrokerCredentials, localSettings, startBroker } from '../../scripts/kafka-local-lib.mjs';
import { kafkaTool } from './java/java-consumer.js';
import { expectPortsFree } from './local-machine.js';

export interface SecuredBroker {
  settings: ReturnType<typeof localSettings>;
  credentials: BrokerCredentials;
  brokers: string;
}

/**
 * A single SASL_SSL broker of a spec's own, on the port `portVariable` names (or `defaultPort`), its controller on
 * the next port and its mutual-TLS listener on the one after, with SCRAM users `users` beside the launcher's own and
 * `brokerProperties` beside the launcher's settings.
 */
export async function startSecuredBroker(
  portVariable: string,
  defaultPort: number,
  users: string[],
  brokerProperties?: Record<string, string | number | boolean>,
): Promise<SecuredBroker> {
  const port = Number(process.env[portVariable] ?? defaultPort);
  await expectPortsFree([port, port + 1, port + 2], portVariable);
  const settings = localSettings({
    ...process.env,
    KAFKA_BROKERS: '',
    KAFKA_NODES: '1',
    KAFKA_SECURITY: 'sasl_ssl',
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(port + 1),
    KAFKA_MTLS_PORT: String(port + 2),
  });
  const started = await startBroker({ users, brokerProperties }, settings);
  return { settings, credentials: started.credentials!, brokers: started.brokers };
}

/**
 * Kafka's `kafka-configs` (its ConfigCommand class, from the broker's jars) as the super user of `broker`, with its
 * client settings written into `dir`. Resolves to what it printed.
 */
export async function kafkaConfigs(
  broker: Pick<SecuredBroker, 'brokers' | 'credentials'>,
  dir: string,
  args: string[],
): Promise<string> {
  const { brokers, credentials } = broker;
  const config = join(dir, 'admin.properties');
  writeFileSync(
    config,
    [
      'security.protocol=SASL_SSL',
      'sasl.mechanism=SCRAM-SHA-512',
      'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required ' +
        `username="admin" password="${credentials.users.admin}";`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${credentials.ca}`,
    ].join('\n'),
  );
  const run = await kafkaTool('kafka.admin.ConfigCommand', [brokers], ['--command-config', config, ...args]);
  // Not the arguments: they may hold a password.
  if (run.code !== 0) throw new Error(`kafka-configs exited with ${run.code}: ${run.stderr}`);
  return run.stdout;
}
