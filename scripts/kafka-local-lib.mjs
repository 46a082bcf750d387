/**
 * The example's broker launcher: nest-kafka-groups/testing's (Apache Kafka in KRaft mode from the Maven jars, no
 * Docker; its source documents the environment and the .kafka/ layout), with the secured mode's users and ACLs of
 * the example service (kafka-local-security.mjs). Used by the CLI (kafka-local.mjs), the jest global setup, the
 * demo, the benchmark and the fault suite. Runs the launcher from the package's sources (library-source.mjs), so it
 * needs no build.
 */
import { importLibrarySource } from './library-source.mjs';
import { SERVICE_USER, serviceAcls } from './kafka-local-security.mjs';

const launcher = await importLibrarySource('testing/kafka-local.ts');

/** A secured broker (KAFKA_SECURITY=sasl_ssl) gets the example service's user, its client certificate and ACLs. */
const EXAMPLE_SECURITY = { clientCertificateUser: SERVICE_USER, acls: () => serviceAcls() };

export const {
  KafkaLocalError,
  brokerCredentials,
  brokerStatus,
  createAcls,
  isBrokerReachable,
  killNode,
  localSettings,
  resolveJars,
  startNode,
  stopBroker,
  stopBrokerKeepData,
  stopNode,
} = launcher;

export function log(message) {
  console.log(`[kafka-local] ${message}`);
}

export function ensureBroker(settings = localSettings()) {
  return launcher.ensureBroker(settings, { security: EXAMPLE_SECURITY });
}

/** `users`: extra SASL users of a secured broker (a password each, no ACL); `brokerProperties`: more of its settings. */
export function startBroker(
  { reuseData = false, users = [], brokerProperties } = {},
  settings = localSettings(),
) {
  return launcher.startBroker(
    { reuseData, security: { ...EXAMPLE_SECURITY, users, brokerProperties } },
    settings,
  );
}

export function startBrokerOnSameData(settings = localSettings()) {
  return launcher.startBrokerOnSameData(settings, EXAMPLE_SECURITY);
}

export function restartBroker(settings = localSettings()) {
  return launcher.restartBroker(settings, EXAMPLE_SECURITY);
}
