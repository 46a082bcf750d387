import { KafkaGroupsError } from './kafka-groups.error.js';

/**
 * The brokers refused this client's credentials (SASL) or the TLS handshake failed (an untrusted or invalid
 * certificate on either side). Retrying does not help until the configuration is fixed; the clients keep retrying
 * with backoff meanwhile. The message names the brokers, the security protocol and mechanism and the user, never
 * a password or a key.
 */
export class KafkaAuthenticationError extends KafkaGroupsError {
  constructor(
    readonly brokers: string,
    readonly mechanism: string,
    readonly principal: string,
    readonly reason: string,
    cause?: unknown,
  ) {
    super(`Kafka authentication failed at broker ${brokers} (${mechanism}, ${principal}): ${reason}`, {
      cause,
    });
  }
}
