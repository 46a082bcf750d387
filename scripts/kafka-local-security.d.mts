/** Types for scripts/kafka-local-security.mjs (the example service's user and ACLs on the secured broker). */
import type { AclEntry } from 'kafkajs';

export {
  ADMIN_USER,
  SASL_MECHANISMS,
  allow,
  mtlsClientConfig,
  saslClientConfig,
} from 'nest-kafka-groups/testing';
export declare const SERVICE_USER: 'svc-flights';
export declare const SERVICE_TOPIC_PREFIX: string;
export declare const SERVICE_GROUPS: string[];
export declare function serviceAcls(user?: string): AclEntry[];
