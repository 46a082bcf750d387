import type { KafkaHandlerContext } from '../context/kafka-batch.context.js';
import type { ResolvedHandlerSettings } from '../kafka.options.js';
import type { RetryTopicChain } from '../retry/retry-topic-chain.js';

/** One topic of a group and the handler that serves it, with its resolved retry and dead-letter settings. */
export interface GroupRoute {
  topic: string;
  /** `Class.method`, for logs and errors. */
  handlerName: string;
  settings: ResolvedHandlerSettings;
  deadLetterTopic: string;
  /** With retry topics on: the handler's chain of retry topics (on its main topic's route and on each retry topic's). */
  retryTopics?: RetryTopicChain;
  /** This route's topic is one of those retry topics: its records wait for their due time. */
  isRetryTopic?: boolean;
  /**
   * Runs the handler through Nest's pipeline. Undefined when the handler returned synchronously and succeeded;
   * otherwise a promise that resolves with the failure (the original error where one was recorded), or with
   * undefined on success. Never throws nor rejects.
   */
  invoke(data: unknown, context: KafkaHandlerContext): Promise<unknown> | undefined;
  /** Set for a batch handler (`@KafkaHandler(topic, { batch: true })`). */
  batch?: BatchRoute;
}

/** How a batch handler is called. */
export interface BatchRoute {
  maxBatchSize: number;
  /**
   * Runs one element through the handler's pipes with the declared `items` class as metatype: resolves with the
   * element as the handler gets it, rejects with what a pipe threw. Absent without `items`.
   */
  validateItem?: (value: unknown) => Promise<unknown>;
}
