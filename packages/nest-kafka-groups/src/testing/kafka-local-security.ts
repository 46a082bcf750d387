/**
 * The secured mode of the local broker (KAFKA_SECURITY=sasl_ssl): what a managed Kafka looks like to a client.
 *
 * - A throwaway CA, a broker certificate for 127.0.0.1/localhost and a client certificate (CN = the
 *   `clientCertificateUser`), made with openssl into <data>/security/ on every fresh start.
 * - A SASL_SSL listener on the client port (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; SCRAM users are written into the
 *   metadata log at format time with `kafka-storage format --add-scram`), and an SSL listener with required client
 *   certificates (mutual TLS; the principal is the certificate's CN) on KAFKA_MTLS_PORT.
 * - The StandardAuthorizer: `admin` is the super user; other users get a password and only the ACLs given to the
 *   launcher (`startBroker({ security: { acls } })`) or added later with `createAcls`.
 * - Passwords are random per start and written to <data>/security/credentials.json (mode 0600).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  type AclEntry,
  type SASLOptions,
  ResourcePatternTypes,
} from '../client/kafkajs.js';
import { KafkaLocalError } from './kafka-local.error.js';

/** Modes of the local broker: plaintext, or SASL_SSL with mutual TLS and ACLs. */
export const SECURITY_MODES = ['plaintext', 'sasl_ssl'] as const;
/** A mode of the local broker. */
export type KafkaLocalSecurityMode = (typeof SECURITY_MODES)[number];
/** The super user of a secured local broker. */
export const ADMIN_USER = 'admin';
const USER_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const CERT_DAYS = 2;

/** Broker-side SASL mechanisms of the secured listener, as Kafka names them. */
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

/** The secured broker's users and files, as written to <data>/security/credentials.json. */
export interface KafkaLocalCredentials extends SecurityFiles {
  /** user name -> password */
  users: Record<string, string>;
}

/** Files of the secured mode inside a node's data directory. */
export interface SecurityFiles {
  dir: string;
  caKey: string;
  ca: string;
  brokerKey: string;
  brokerCert: string;
  /** Key and certificate chain in one file: Kafka's PEM keystore format. */
  brokerKeystore: string;
  clientKey: string;
  clientCert: string;
  credentials: string;
}

/** KAFKA_SECURITY read from the environment: the mode, or why the value is not one. */
export function securityModeFrom(
  env: NodeJS.ProcessEnv,
): { mode: KafkaLocalSecurityMode; error?: undefined } | { mode?: undefined; error: string } {
  const mode = (env.KAFKA_SECURITY?.trim() || 'plaintext').toLowerCase();
  if (!(SECURITY_MODES as readonly string[]).includes(mode)) {
    return { error: `KAFKA_SECURITY=${env.KAFKA_SECURITY}: expected one of ${SECURITY_MODES.join(', ')}` };
  }
  return { mode: mode as KafkaLocalSecurityMode };
}

/** Files of the secured mode inside a node's data directory. */
export function securityFiles(dir: string): SecurityFiles {
  const base = join(dir, 'security');
  return {
    dir: base,
    caKey: join(base, 'ca-key.pem'),
    ca: join(base, 'ca.pem'),
    brokerKey: join(base, 'broker-key.pem'),
    brokerCert: join(base, 'broker.pem'),
    /** Key and certificate chain in one file: Kafka's PEM keystore format. */
    brokerKeystore: join(base, 'broker-keystore.pem'),
    clientKey: join(base, 'client-key.pem'),
    clientCert: join(base, 'client.pem'),
    credentials: join(base, 'credentials.json'),
  };
}

/**
 * Fresh certificates and passwords for admin, `certificateUser` (the client certificate's CN) and `extraUsers`.
 * Returns the credentials: { users: { name: password }, ca, clientCert, clientKey, ... file paths }.
 */
export function prepareSecurity(
  dir: string,
  certificateUser: string,
  extraUsers: readonly string[] = [],
): KafkaLocalCredentials {
  const f = securityFiles(dir);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  requireOpenssl();
  // The CA signs the broker and client certificates and is thrown away with the data folder.
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f.caKey,
    ].concat(['-out', f.ca, '-days', String(CERT_DAYS), '-subj', '/CN=kafka-local test CA']),
  );
  issue(f, f.brokerKey, f.brokerCert, '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  issue(f, f.clientKey, f.clientCert, `/CN=${certificateUser}`, 'extendedKeyUsage=clientAuth');
  writeFileSync(f.brokerKeystore, readFileSync(f.brokerKey, 'utf8') + readFileSync(f.brokerCert, 'utf8'));

  const names = [...new Set([ADMIN_USER, certificateUser, ...extraUsers])];
  for (const name of names) {
    if (!USER_NAME.test(name)) throw new KafkaLocalError(`user name "${name}": expected ${USER_NAME}`);
  }
  const users = Object.fromEntries(names.map((name) => [name, randomBytes(18).toString('base64url')]));
  const credentials: KafkaLocalCredentials = { users, ...f };
  writeFileSync(f.credentials, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  for (const file of [f.caKey, f.brokerKey, f.clientKey, f.brokerKeystore]) chmodSync(file, 0o600);
  return credentials;
}

/** The credentials of the secured broker whose data is in `dir`, or undefined when it has none. */
export function readCredentials(dir: string): KafkaLocalCredentials | undefined {
  const { credentials } = securityFiles(dir);
  return existsSync(credentials)
    ? (JSON.parse(readFileSync(credentials, 'utf8')) as KafkaLocalCredentials)
    : undefined;
}

/** Arguments for `kafka-storage format`: every user gets both SCRAM credentials. */
export function scramFormatArgs(credentials: KafkaLocalCredentials): string[] {
  return Object.entries(credentials.users).flatMap(([name, password]) =>
    ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((mechanism) => [
      '--add-scram',
      `${mechanism}=[name=${name},password=${password}]`,
    ]),
  );
}

/**
 * server.properties entries of the secured mode, on top of the plaintext ones. Clients use SASL_SSL on
 * `node.port` or SSL with a client certificate on `mtlsPort`; the controller quorum stays on its own plaintext
 * listener on 127.0.0.1 (its connections carry the ANONYMOUS principal, hence the super user entry).
 */
export function securedServerProperties(
  node: { port: number; controllerPort: number },
  mtlsPort: number,
  credentials: KafkaLocalCredentials,
): Record<string, string | number | boolean> {
  const { users } = credentials;
  const plainUsers = Object.entries(users).map(([name, password]) => `user_${name}="${password}"`);
  return {
    listeners:
      `SASL_SSL://127.0.0.1:${node.port},SSL://127.0.0.1:${mtlsPort},` +
      `CONTROLLER://127.0.0.1:${node.controllerPort}`,
    'advertised.listeners': `SASL_SSL://127.0.0.1:${node.port},SSL://127.0.0.1:${mtlsPort}`,
    'listener.security.protocol.map': 'SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'SASL_SSL',
    'sasl.enabled.mechanisms': SASL_MECHANISMS.join(','),
    'sasl.mechanism.inter.broker.protocol': 'PLAIN',
    'listener.name.sasl_ssl.plain.sasl.jaas.config':
      'org.apache.kafka.common.security.plain.PlainLoginModule required ' +
      `username="${ADMIN_USER}" password="${users[ADMIN_USER]}" ${plainUsers.join(' ')};`,
    'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config':
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config':
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'ssl.keystore.type': 'PEM',
    'ssl.keystore.location': credentials.brokerKeystore,
    'ssl.truststore.type': 'PEM',
    'ssl.truststore.location': credentials.ca,
    // The SASL_SSL listener authenticates with SASL; the SSL listener with the client certificate.
    'listener.name.ssl.ssl.client.auth': 'required',
    // User:CN=<name> becomes User:<name>, so a certificate gets the same ACLs as the SASL user.
    'ssl.principal.mapping.rules': 'RULE:^CN=([a-zA-Z0-9._-]+)$/$1/,DEFAULT',
    'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'super.users': `User:${ADMIN_USER};User:ANONYMOUS`,
    'allow.everyone.if.no.acl.found': false,
  };
}

/** kafkajs connection settings for `user` (default the super user) on the SASL_SSL listener. */
export function saslClientConfig(
  credentials: KafkaLocalCredentials,
  {
    user = ADMIN_USER,
    mechanism = 'scram-sha-512',
  }: { user?: string; mechanism?: 'plain' | 'scram-sha-256' | 'scram-sha-512' } = {},
): { ssl: { ca: string[] }; sasl: SASLOptions } {
  return {
    ssl: { ca: [readFileSync(credentials.ca, 'utf8')] },
    sasl: { mechanism, username: user, password: credentials.users[user] } as SASLOptions,
  };
}

/** kafkajs connection settings for mutual TLS on the SSL listener, with the client certificate. */
export function mtlsClientConfig(credentials: KafkaLocalCredentials): {
  ssl: { ca: string[]; cert: string; key: string };
} {
  return {
    ssl: {
      ca: [readFileSync(credentials.ca, 'utf8')],
      cert: readFileSync(credentials.clientCert, 'utf8'),
      key: readFileSync(credentials.clientKey, 'utf8'),
    },
  };
}

/** ACL entries (kafkajs createAcls format) giving `principal` `operations` on a resource. */
export function allow(
  principal: string,
  resourceType: keyof typeof AclResourceTypes,
  resourceName: string,
  operations: readonly (keyof typeof AclOperationTypes)[],
  prefixed = false,
): AclEntry[] {
  return operations.map((operation) => ({
    resourceType: AclResourceTypes[resourceType],
    resourceName,
    resourcePatternType: prefixed ? ResourcePatternTypes.PREFIXED : ResourcePatternTypes.LITERAL,
    principal: `User:${principal}`,
    host: '*',
    operation: AclOperationTypes[operation],
    permissionType: AclPermissionTypes.ALLOW,
  }));
}

function issue(
  f: SecurityFiles,
  keyFile: string,
  certFile: string,
  subject: string,
  extension: string,
): void {
  const csr = `${certFile}.csr`;
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile].concat([
      '-out',
      csr,
      '-subj',
      subject,
    ]),
  );
  const extFile = `${certFile}.ext`;
  writeFileSync(extFile, `${extension}\n`);
  openssl(
    ['x509', '-req', '-in', csr, '-CA', f.ca, '-CAkey', f.caKey, '-CAcreateserial', '-out', certFile].concat([
      '-days',
      String(CERT_DAYS),
      '-extfile',
      extFile,
    ]),
  );
  // Node and Kafka both read PKCS#8 ("BEGIN PRIVATE KEY"), which `req -newkey` writes.
}

function requireOpenssl(): void {
  if (spawnSync('openssl', ['version'], { encoding: 'utf8' }).status !== 0) {
    throw new KafkaLocalError(
      'KAFKA_SECURITY=sasl_ssl needs openssl on the PATH to make the throwaway certificates',
    );
  }
}

function openssl(args: string[]): void {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new KafkaLocalError(
      `openssl ${args[0]} failed: ${result.stderr.trim().split('\n').slice(-3).join(' ')}`,
    );
  }
}
