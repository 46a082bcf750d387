/** Types for scripts/kafka-local-lib.mjs, so TypeScript specs (outage tests) can import it. */

export declare class KafkaLocalError extends Error {}

/** One KRaft node (combined broker and controller) of the local cluster. */
export interface LocalNode {
  /** 0-based position; the functions that act on one node take it. */
  index: number;
  /** node.id, index + 1. */
  nodeId: number;
  /** Client port, KAFKA_PORT + index. */
  port: number;
  /** Controller quorum port, KAFKA_CONTROLLER_PORT + index. */
  controllerPort: number;
  /** 127.0.0.1:<port>. */
  address: string;
  dir: string;
  pidFile: string;
}

export interface LocalSettings {
  port: number;
  controllerPort: number;
  /** KAFKA_NODES (1 by default). */
  nodeCount: number;
  nodes: LocalNode[];
  /** Where this script's broker(s) listen: 127.0.0.1:<KAFKA_PORT>, comma-separated for every node of a cluster. */
  localAddress: string;
  /** KAFKA_BROKERS, else localAddress. */
  brokers: string;
  brokersFromEnv: boolean;
  javaHome: string | undefined;
  /** The single node's directory, or the cluster's directory holding every node's. */
  dataDir: string;
  /** The (first) node's pidfile. */
  pidFile: string;
  /** KAFKA_SECURITY: plaintext (default) or sasl_ssl (see kafka-local-security.mjs). */
  security: 'plaintext' | 'sasl_ssl';
  /** sasl_ssl only: the mutual-TLS listener's port (KAFKA_MTLS_PORT, default KAFKA_CONTROLLER_PORT + 1). */
  mtlsPort: number | undefined;
}

/** A secured broker's throwaway credentials (written to <data>/security/credentials.json). */
export interface BrokerCredentials {
  /** user name -> password (admin is the super user, svc-flights the example service's user). */
  users: Record<string, string>;
  /** PEM files. */
  ca: string;
  caKey: string;
  clientCert: string;
  clientKey: string;
  brokerCert: string;
  brokerKey: string;
  brokerKeystore: string;
  credentials: string;
  dir: string;
}

export interface StartedBroker {
  brokers: string;
  /** The first node's pid. */
  pid: number;
  seconds: number;
  /** Set for a secured broker. */
  credentials?: BrokerCredentials;
}

export interface StoppedBroker {
  stopped: boolean;
  /** The first stopped node's pid. */
  pid: number | undefined;
  /** Every stopped node's pid. */
  pids: number[];
}

export interface NodeStatus {
  index: number;
  nodeId: number;
  address: string;
  pid: number | undefined;
  reachable: boolean;
}

export declare function log(message: string): void;
export declare function localSettings(env?: NodeJS.ProcessEnv): LocalSettings;
export declare function isBrokerReachable(
  brokers: string | string[],
  options?: { timeoutMs?: number; client?: object },
): Promise<boolean>;
export declare function brokerCredentials(settings?: LocalSettings): BrokerCredentials | undefined;
/** Adds ACL entries (kafkajs `createAcls` format) as the secured broker's super user. */
export declare function createAcls(brokers: string, credentials: BrokerCredentials, acl: object[]): Promise<void>;
export declare function ensureBroker(
  settings?: LocalSettings,
): Promise<{ brokers: string; started: false } | ({ started: true } & StartedBroker & { pids: number[] })>;
export declare function startBroker(
  /** users: extra SASL users of a secured broker (a password each, no ACL). */
  options?: { reuseData?: boolean; users?: string[] },
  settings?: LocalSettings,
): Promise<StartedBroker & { pids: number[] }>;
export declare function stopBroker(
  options?: { keepData?: boolean },
  settings?: LocalSettings,
): Promise<StoppedBroker>;
export declare function stopBrokerKeepData(settings?: LocalSettings): Promise<StoppedBroker>;
export declare function startBrokerOnSameData(
  settings?: LocalSettings,
): Promise<StartedBroker & { pids: number[] }>;
export declare function restartBroker(settings?: LocalSettings): Promise<StartedBroker & { pids: number[] }>;
/** Stops one node by its own pid, keeping its data: SIGTERM (clean, the default) or SIGKILL (a crash). */
export declare function stopNode(
  index: number,
  options?: { signal?: 'SIGTERM' | 'SIGKILL' },
  settings?: LocalSettings,
): Promise<{ stopped: boolean; pid: number | undefined }>;
export declare function killNode(
  index: number,
  settings?: LocalSettings,
): Promise<{ stopped: boolean; pid: number | undefined }>;
/** Starts one stopped node again on its data; resolves once it answers and the cluster lists it. */
export declare function startNode(index: number, settings?: LocalSettings): Promise<StartedBroker>;
export declare function brokerStatus(settings?: LocalSettings): Promise<{
  brokers: string;
  reachable: boolean;
  pid: number | undefined;
  dataDir: string;
  nodes: NodeStatus[];
}>;
