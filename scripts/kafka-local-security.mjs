/**
 * The example service's part of the secured local broker (KAFKA_SECURITY=sasl_ssl; the mode itself, certificates,
 * SASL users and listeners, is nest-kafka-groups/testing's): its user, whose client certificate the broker issues,
 * and exactly the ACLs the service needs.
 */
import { importLibrarySource } from './library-source.mjs';

export const { ADMIN_USER, SASL_MECHANISMS, allow, mtlsClientConfig, saslClientConfig } =
  await importLibrarySource('testing/kafka-local-security.ts');

export const SERVICE_USER = 'svc-flights';
/** The example service's resources: the svc-flights user may use these and nothing else. */
export const SERVICE_TOPIC_PREFIX = 'live-flight-';
export const SERVICE_GROUPS = ['airnav', 'flight24'];

/**
 * What the example service needs and no more: create, describe, read and write its topics (dead-letter topics
 * included: they share the prefix), read their configs (a dead-letter topic it creates takes its source topic's
 * max.message.bytes), commit and join as its two groups.
 */
export function serviceAcls(user = SERVICE_USER) {
  return [
    ...allow(
      user,
      'TOPIC',
      SERVICE_TOPIC_PREFIX,
      ['CREATE', 'DESCRIBE', 'DESCRIBE_CONFIGS', 'READ', 'WRITE'],
      true,
    ),
    ...SERVICE_GROUPS.flatMap((group) => allow(user, 'GROUP', group, ['READ', 'DESCRIBE'])),
  ];
}
