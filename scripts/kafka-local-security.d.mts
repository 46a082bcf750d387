/** Types for scripts/kafka-local-security.mjs (the secured mode of the local broker). */
import type { BrokerCredentials } from './kafka-local-lib.mjs';

export declare const ADMIN_USER: 'admin';
export declare const SERVICE_USER: 'svc-flights';
export declare const SERVICE_TOPIC_PREFIX: string;
export declare const SERVICE_GROUPS: string[];
export declare const SASL_MECHANISMS: string[];
export declare function readCredentials(dir: string): BrokerCredentials | undefined;
export declare function saslClientConfig(
  credentials: BrokerCredentials,
  options?: { user?: string; mechanism?: 'plain' | 'scram-sha-256' | 'scram-sha-512' },
): { ssl: { ca: string[] }; sasl: { mechanism: any; username: string; password: string } };
export declare function mtlsClientConfig(credentials: BrokerCredentials): {
  ssl: { ca: string[]; cert: string; key: string };
};
/** ACL entries (kafkajs createAcls format) giving `principal` `operations` on a resource. */
export declare function allow(
  principal: string,
  resourceType: 'TOPIC' | 'GROUP' | 'CLUSTER',
  resourceName: string,
  operations: ('READ' | 'WRITE' | 'CREATE' | 'DESCRIBE' | 'DELETE' | 'ALTER')[],
  prefixed?: boolean,
): object[];
export declare function serviceAcls(user?: string): object[];
