/** Types for scripts/kafka-local-lib.mjs: the package's launcher with the example's secured-mode defaults. */
import type { KafkaLocalSettings, StartedBroker } from 'nest-kafka-groups/testing';

export {
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
  type KafkaLocalCredentials as BrokerCredentials,
  type KafkaLocalNode as LocalNode,
  type KafkaLocalSettings as LocalSettings,
  type StartedBroker,
} from 'nest-kafka-groups/testing';

export declare function log(message: string): void;
export declare function ensureBroker(
  settings?: KafkaLocalSettings,
): Promise<{ brokers: string; started: boolean } & Partial<StartedBroker>>;
export declare function startBroker(
  /** users: extra SASL users of a secured broker (a password each, no ACL); brokerProperties: more of its settings. */
  options?: {
    reuseData?: boolean;
    users?: string[];
    brokerProperties?: Record<string, string | number | boolean>;
  },
  settings?: KafkaLocalSettings,
): Promise<StartedBroker>;
export declare function startBrokerOnSameData(settings?: KafkaLocalSettings): Promise<StartedBroker>;
export declare function restartBroker(settings?: KafkaLocalSettings): Promise<StartedBroker>;
