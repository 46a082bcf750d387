import type { KafkaMessage } from '../client/kafkajs.js';
import type { KafkaRetryOptions } from '../kafka.options.js';
import { backoffDelay } from './backoff.js';
import {
  decodeAttempts,
  lastHeader,
  originalTimestampOf,
  RETRY_TOPIC_HEADERS,
  type RetryHeaderValues,
} from './retry-topic-headers.js';
import { DEFAULT_RETRY_TOPIC_SUFFIX, retryTopicNames } from './retry-topic-names.js';

/** Where a message goes after a failed attempt: the retry topic of its next attempt, or the dead-letter topic. */
export interface RetryDestination {
  topic: string;
  deadLetter: boolean;
  delayMs: number;
  headers: RetryHeaderValues;
}

/**
 * The retry topics of one handler's topic: attempt 1 on the main topic, attempt i + 2 on `topics[i]` once
 * `delaysMs[i]` passed, then the dead-letter topic. The attempt a record is on comes from its
 * `retry_topic-attempts` header (so topics shared by several attempts, and records Spring wrote, count right);
 * a retry record without one counts as the first attempt delivered on its topic.
 */
export class RetryTopicChain {
  /** Retry topic of each retry, in order; a name repeats where attempts share a topic. */
  readonly steps: readonly string[];
  /** The retry topics, each once. */
  readonly topics: readonly string[];
  /** Deliveries in all: the first plus one per delay. */
  readonly attempts: number;

  constructor(
    readonly mainTopic: string,
    readonly delaysMs: readonly number[],
    readonly deadLetterTopic: string,
    naming: Pick<KafkaRetryOptions, 'topicSuffix' | 'topicSuffixing' | 'topicName'> = {},
  ) {
    this.steps = retryTopicNames(mainTopic, delaysMs, {
      suffix: naming.topicSuffix ?? DEFAULT_RETRY_TOPIC_SUFFIX,
      suffixing: naming.topicSuffixing ?? 'delay',
      topicName: naming.topicName,
    });
    this.topics = [...new Set(this.steps)];
    this.attempts = delaysMs.length + 1;
  }

  /** The attempt a delivery of `message` on `topic` is: 1 on the main topic. */
  attemptOf(topic: string, message: KafkaMessage): number {
    if (topic === this.mainTopic) return 1;
    const header = lastHeader(message.headers, RETRY_TOPIC_HEADERS.attempts);
    return header ? decodeAttempts(header) : this.steps.indexOf(topic) + 2;
  }

  /**
   * Where the message goes after attempt `attempt` failed at `now`: the next retry topic when `retry` (the error
   * may pass) and attempts are left, else the dead-letter topic (due at once).
   */
  next(attempt: number, retry: boolean, message: KafkaMessage, now: number): RetryDestination {
    const index = attempt - 1;
    const toRetry = retry && index >= 0 && index < this.steps.length;
    const delayMs = toRetry ? this.delaysMs[index] : 0;
    return {
      topic: toRetry ? this.steps[index] : this.deadLetterTopic,
      deadLetter: !toRetry,
      delayMs,
      headers: {
        attempts: attempt + 1,
        dueAt: now + delayMs,
        originalTimestamp: originalTimestampOf(message.headers, message.timestamp),
      },
    };
  }
}

/**
 * The delays of a handler's retry topics: `delaysMs` as given, else those of the in-memory backoff (initialDelayMs,
 * multiplier, maxDelayMs) for `attempts - 1` retries, as Spring derives them from its back-off policy.
 */
export function retryTopicDelays(retry: KafkaRetryOptions): number[] {
  if (retry.delaysMs) return [...retry.delaysMs];
  return Array.from({ length: Math.max(retry.attempts - 1, 0) }, (_, index) =>
    Math.round(backoffDelay(retry, index + 1)),
  );
}
