/** Types for scripts/kafka-local-lib.mjs, so TypeScript specs (outage tests) can import it. */

export declare class KafkaLocalError extends Error {}

export interface LocalSettings {
  port: number;
  controllerPort: number;
  /** 127.0.0.1:<KAFKA_PORT>, where this script's broker listens. */
  localAddress: string;
  /** KAFKA_BROKERS, else localAddress. */
  brokers: string;
  brokersFromEnv: boolean;
  javaHome: string | undefined;
  dataDir: string;
  pidFile: string;
}

export interface StartedBroker {
  brokers: string;
  pid: number;
  seconds: number;
}

export declare function log(message: string): void;
export declare function localSettings(env?: NodeJS.ProcessEnv): LocalSettings;
export declare function isBrokerReachable(
  brokers: string | string[],
  options?: { timeoutMs?: number },
): Promise<boolean>;
export declare function ensureBroker(
  settings?: LocalSettings,
): Promise<{ brokers: string; started: false } | ({ started: true } & StartedBroker)>;
export declare function startBroker(
  options?: { reuseData?: boolean },
  settings?: LocalSettings,
): Promise<StartedBroker>;
export declare function stopBroker(
  options?: { keepData?: boolean },
  settings?: LocalSettings,
): Promise<{ stopped: boolean; pid: number | undefined }>;
export declare function stopBrokerKeepData(
  settings?: LocalSettings,
): Promise<{ stopped: boolean; pid: number | undefined }>;
export declare function startBrokerOnSameData(settings?: LocalSettings): Promise<StartedBroker>;
export declare function restartBroker(settings?: LocalSettings): Promise<StartedBroker>;
export declare function brokerStatus(
  settings?: LocalSettings,
): Promise<{ brokers: string; reachable: boolean; pid: number | undefined; dataDir: string }>;
