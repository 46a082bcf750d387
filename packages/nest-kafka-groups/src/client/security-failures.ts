import { X509Certificate } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { KafkaAuthenticationError } from '../errors/kafka-authentication.error.js';
import { KafkaAuthorizationError } from '../errors/kafka-authorization.error.js';
import { topicResource } from '../errors/topic-names.js';
import type { KafkaModuleOptions } from '../kafka.options.js';

/** Who this client is to the brokers, as messages name it (never a secret). */
export interface SecurityIdentity {
  brokers: string;
  /** "SASL_SSL, SCRAM-SHA-512", "SSL, client certificate", "PLAINTEXT". */
  mechanism: string;
  /** "user svc-flights", "certificate CN=svc-flights", "an anonymous client". */
  principal: string;
}

/** Who the client authenticates as (mechanism, user or certificate), for error messages that never include a secret. */
export function securityIdentityOf(
  options: Pick<KafkaModuleOptions, 'brokers' | 'ssl' | 'sasl'>,
): SecurityIdentity {
  const ssl = options.ssl;
  const tls = Boolean(ssl);
  const cert = typeof ssl === 'object' && ssl !== null ? ssl.cert : undefined;
  const brokers = options.brokers.join(',');
  const sasl = options.sasl;
  if (sasl) {
    const username = 'username' in sasl ? sasl.username : undefined;
    return {
      brokers,
      mechanism: `${tls ? 'SASL_SSL' : 'SASL_PLAINTEXT'}, ${sasl.mechanism.toUpperCase()}`,
      principal: username ? `user ${username}` : `a ${sasl.mechanism.toUpperCase()} client`,
    };
  }
  if (cert) return { brokers, mechanism: 'SSL, client certificate', principal: certificateSubject(cert) };
  return { brokers, mechanism: tls ? 'SSL' : 'PLAINTEXT', principal: 'an anonymous client' };
}

function certificateSubject(cert: unknown): string {
  const pem = Array.isArray(cert) ? cert[0] : cert;
  try {
    const subject = new X509Certificate(pem as string | Buffer).subject.replaceAll('\n', ',');
    return `certificate ${subject}`;
  } catch {
    return 'a client certificate';
  }
}

/** Node's TLS error codes for a certificate that is untrusted, invalid or missing. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

const AUTHORIZATION_TYPES = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
]);

interface ChainedError {
  name?: unknown;
  type?: unknown;
  code?: unknown;
  message?: unknown;
  broker?: unknown;
  cause?: unknown;
  originalError?: unknown;
  errors?: unknown;
}

/** The error and the ones it wraps (kafkajs nests them in retry, aggregate and non-retriable errors). */
function* chain(error: unknown): Generator<ChainedError> {
  const queue = [error];
  for (let seen = 0; queue.length > 0 && seen < 20; seen++) {
    const current = queue.shift() as ChainedError | undefined;
    if (!current || typeof current !== 'object') continue;
    yield current;
    queue.push(current.cause, current.originalError);
    if (Array.isArray(current.errors)) queue.push(...(current.errors as unknown[]));
  }
}

/** A TLS handshake that failed on a certificate (Node's error code), rather than a broker that cannot be reached. */
export function isTlsFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TLS_CODES.has(code);
}

/** A SASL or TLS failure in `error`'s chain, as a KafkaAuthenticationError; undefined for anything else. */
export function authenticationFailureOf(
  error: unknown,
  identity: SecurityIdentity,
): KafkaAuthenticationError | undefined {
  if (error instanceof KafkaAuthenticationError) return error;
  for (const e of chain(error)) {
    const message = String(e.message ?? '');
    // kafkajs's SASL error does not say which broker refused; its log line just before did (see noteLogLine).
    const broker =
      typeof e.broker === 'string' ? e.broker : (lastAuthentication?.error.brokers ?? identity.brokers);
    if (e.name === 'KafkaJSSASLAuthenticationError') {
      // "SASL PLAIN authentication failed: Authentication failed: Invalid username or password"
      const reason = saslFailureReason(message);
      if (HANDSHAKE_CUT.test(reason)) return undefined;
      return new KafkaAuthenticationError(broker, identity.mechanism, identity.principal, reason, error);
    }
    if (isTlsFailure(e)) {
      const reason = `TLS handshake failed: ${message.replace(/^Connection error: /, '')}`;
      return new KafkaAuthenticationError(broker, identity.mechanism, identity.principal, reason, error);
    }
  }
  return undefined;
}

/** What the failed call was doing, for the authorization message. */
export interface AuthorizationContext {
  /** e.g. "read", "write", "create". */
  operation: string;
  topics?: readonly string[];
  groupId?: string;
}

/**
 * An ACL denial in `error`'s chain, named: "not authorized to read topic t in group g as user u". A group
 * coordinator that cannot be found right after the broker denied access to a group (kafkajs drops that error and
 * reports only "Failed to find group coordinator") counts as a group denial too.
 */
export function authorizationFailureOf(
  error: unknown,
  identity: SecurityIdentity,
  context: AuthorizationContext,
): KafkaAuthorizationError | undefined {
  if (error instanceof KafkaAuthorizationError) return error;
  for (const e of chain(error)) {
    const type = typeof e.type === 'string' ? e.type : authorizationTypeOfMessage(String(e.message ?? ''));
    if (
      type === 'GROUP_AUTHORIZATION_FAILED' ||
      (e.name === 'KafkaJSGroupCoordinatorNotFound' && groupDenialSeen())
    ) {
      return new KafkaAuthorizationError(
        'use',
        `group ${context.groupId ?? '(unknown)'}`,
        identity.principal,
        error,
      );
    }
    if (type === 'TOPIC_AUTHORIZATION_FAILED') {
      const resource =
        topicResource(context.topics ?? []) + (context.groupId ? ` in group ${context.groupId}` : '');
      return new KafkaAuthorizationError(context.operation, resource, identity.principal, error);
    }
    if (type === 'CLUSTER_AUTHORIZATION_FAILED') {
      // A producer's InitProducerId: an idempotent producer needs WRITE on some topic (or IdempotentWrite).
      if (context.topics?.length) {
        const resource = topicResource(context.topics);
        const hint = 'an idempotent producer needs WRITE on a topic or IdempotentWrite on the cluster';
        return new KafkaAuthorizationError(context.operation, resource, identity.principal, error, hint);
      }
      return new KafkaAuthorizationError(context.operation, 'the cluster', identity.principal, error);
    }
  }
  return undefined;
}

/** kafkajs's texts for these errors (some paths keep only the message, e.g. "Not authorized to access topics"). */
function authorizationTypeOfMessage(message: string): string | undefined {
  if (/Not authorized to access topics|Topic authorization failed/.test(message))
    return 'TOPIC_AUTHORIZATION_FAILED';
  if (/Not authorized to access group|Group authorization failed/.test(message))
    return 'GROUP_AUTHORIZATION_FAILED';
  if (/Cluster authorization failed/.test(message)) return 'CLUSTER_AUTHORIZATION_FAILED';
  return undefined;
}

export function isAuthorizationType(type: unknown): boolean {
  return typeof type === 'string' && AUTHORIZATION_TYPES.has(type);
}

/** How long a broker's group denial explains a "Failed to find group coordinator" that follows it. */
const GROUP_DENIAL_WINDOW_MS = 10_000;
let lastGroupDenial = -Infinity;

function groupDenialSeen(): boolean {
  return Date.now() - lastGroupDenial < GROUP_DENIAL_WINDOW_MS;
}

/** kafkajs log lines that this module reports itself, once and clearly: printed at debug instead. */
/**
 * kafkajs's texts for a connection closed, lost or timed out: as the reason of a SASL failure they say the handshake
 * was cut (a client closing, a broker restarting), not that the broker refused the login.
 */
const HANDSHAKE_CUT =
  /^(Not connected|Closed connection|Connection closed by the server|Connection timeout|Connection error: |Failed to connect: |Request .* timed out)/;

/** "SASL SCRAM SHA512 authentication failed: <reason>" (kafkajs's mechanisms word it alike) -> the reason. */
function saslFailureReason(message: string): string {
  return message.replace(/^SASL [\w -]+ authentication failed: /, '');
}

const SECURITY_LINE =
  /^SASL .* authentication failed|^Response SaslAuthenticate|^Connection error: .*(certificate|alert|self[- ]signed|SSL)/i;

/** How long the last authentication failure explains an admin call that got no answer (see KafkaAdminClient). */
const AUTHENTICATION_WINDOW_MS = 30_000;
let lastAuthentication: { error: KafkaAuthenticationError; at: number } | undefined;

/** The authentication failure kafkajs logged within the last 30 s, if any. */
export function recentAuthenticationFailure(): KafkaAuthenticationError | undefined {
  return lastAuthentication && Date.now() - lastAuthentication.at < AUTHENTICATION_WINDOW_MS
    ? lastAuthentication.error
    : undefined;
}

/**
 * Looks at one kafkajs log entry and tells whether it is a security failure that the library reports itself (the
 * caller then prints kafkajs's line at debug). A SASL or TLS failure of a client with `identity` is reported at
 * once, named, before kafkajs's retries end; a broker's group denial is noted (see authorizationFailureOf).
 */
export function isSecurityLogLine(
  message: string,
  extra: Record<string, unknown>,
  identity?: SecurityIdentity,
): boolean {
  const answer = typeof extra.error === 'string' ? extra.error : '';
  if (
    /^Response FindCoordinator|^Response GroupCoordinator/.test(message) &&
    /Group authorization failed/.test(answer)
  ) {
    lastGroupDenial = Date.now();
  }
  if (!SECURITY_LINE.test(message)) return false;
  const broker = typeof extra.broker === 'string' ? extra.broker : undefined;
  if (identity && broker && !message.startsWith('Response ')) {
    const sasl = message.startsWith('SASL ');
    // A handshake cut by the connection is the connection's to report (the broker connectivity lines), not a login.
    if (sasl && HANDSHAKE_CUT.test(saslFailureReason(message))) return true;
    const reason = sasl
      ? saslFailureReason(message)
      : `TLS handshake failed: ${message.replace(/^Connection error: /, '')}`;
    const error = new KafkaAuthenticationError(broker, identity.mechanism, identity.principal, reason);
    lastAuthentication = { error, at: Date.now() };
    securityFailures.report(error, 'the clients retry with backoff; fix the configuration and restart');
  }
  return true;
}

/**
 * Reports each security failure once at ERROR (later repeats at debug), process-wide: the consumers, the producers
 * and the admin client all meet the same wrong password, and the user needs to read it once. A login refused is one
 * failure per principal and reason whichever broker refused it; the broker words a password that stopped working
 * at a connection's re-authentication apart from one refused at a new login, and both are the same cause.
 */
export class SecurityFailureReport {
  private readonly logger = new Logger('KafkaSecurity');
  private readonly reported = new Set<string>();

  report(error: KafkaAuthenticationError | KafkaAuthorizationError, consequence: string): void {
    const line = `${error.message}; ${consequence}`;
    const key = failureKey(error);
    if (this.reported.has(key)) {
      this.logger.debug(line);
      return;
    }
    this.reported.add(key);
    this.logger.error(line);
  }

  /** After a success: the same failure, should it come back, is reported again. */
  resolved(error: KafkaAuthenticationError | KafkaAuthorizationError): void {
    if (this.reported.delete(failureKey(error))) this.logger.log(`Resolved: ${error.message}`);
  }
}

function failureKey(error: KafkaAuthenticationError | KafkaAuthorizationError): string {
  if (!(error instanceof KafkaAuthenticationError)) return error.message;
  const reason = error.reason.replace(/\bduring re-authentication\b/, 'during authentication');
  return `${error.mechanism}, ${error.principal}: ${reason}`;
}

export const securityFailures = new SecurityFailureReport();
