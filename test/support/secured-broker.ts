import { type BrokerCredentials, localSettings, startBroker } from '../../scripts/kafka-local-lib.mjs';
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
