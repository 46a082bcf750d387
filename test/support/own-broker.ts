import { localSettings } from '../../scripts/kafka-local-lib.mjs';

/**
 * The settings of a single plaintext broker of a spec's own, on the port `portVariable` names (or `defaultPort`),
 * its controller on the next port; never the shared broker of KAFKA_BROKERS.
 */
export function ownBrokerSettings(
  portVariable: string,
  defaultPort: number,
): { port: number; settings: ReturnType<typeof localSettings> } {
  const port = Number(process.env[portVariable] ?? defaultPort);
  const settings = localSettings({
    ...process.env,
    KAFKA_BROKERS: '',
    KAFKA_NODES: '1',
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(port + 1),
  });
  return { port, settings };
}
