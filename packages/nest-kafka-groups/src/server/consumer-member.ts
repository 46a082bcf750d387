import { Logger } from '@nestjs/common';
import { isConnectionError, type PartitionAssigner, undecodableBatchError } from '../client/kafkajs.js';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, RetryOptions } from '../client/kafkajs.js';
import { KafkaGroupContext } from '../context/kafka-group.context.js';
import type { DeadLetterPublisher } from '../dead-letter/dead-letter-publisher.js';
import type { DeadLetterWrite } from '../dead-letter/dead-letter-write.js';
import { KafkaNonRetryableError } from '../errors/kafka-non-retryable.error.js';
import type { KafkaRestartBackoff, ResolvedGroupSettings } from '../kafka.options.js';
import { decodePayload } from '../limits/message-limits.js';
import { printable, printableStack } from '../logging/printable.js';
import { backoffDelay } from '../retry/backoff.js';
import { asError, isRetryable } from '../retry/failure-classifier.js';
import type { GroupRoute } from './group-route.js';
import type { MemberObserver } from './member-observer.js';
import {
  authenticationFailureOf,
  authorizationFailureOf,
  type SecurityIdentity,
  securityFailures,
} from '../client/security-failures.js';
import { KafkaAuthorizationError } from '../errors/kafka-authorization.error.js';

export type MemberState = 'starting' | 'joined' | 'rebalancing' | 'crashed' | 'stopped';

export interface ConsumerMemberConfig {
  kafka: Kafka;
  group: ResolvedGroupSettings;
  routes: ReadonlyMap<string, GroupRoute>;
  deadLetters: DeadLetterPublisher;
  assigners: PartitionAssigner[];
  clientRetry: RetryOptions;
  /** Who this client is to the brokers, for authentication and authorization messages. */
  identity: SecurityIdentity;
  /** Delays before a consumer that could not start (or crashed for good) is created again. */
  restartBackoff: KafkaRestartBackoff;
  /** 0-based index of this member within the process, for logs. */
  index: number;
  observer?: MemberObserver;
}

interface PartitionFailure {
  offset: string;
  attempts: number;
  /** Set once the handler gave up: only the dead-letter write is left to do. */
  exhausted?: Error;
  /** The dead-letter write of this offset, started once; it resumes the partition when the record is in. */
  deadLetter?: DeadLetterWrite;
}

const HEARTBEAT_CHECK_MS = 100;
/** A member the ACLs keep out stays stopped and checks again this rarely (ACLs change by hand). */
const AUTHORIZATION_RECHECK_MS = 60_000;

/**
 * One member of a consumer group: a kafkajs consumer and its loop. Messages of a partition are handled one at a
 * time in order (partitions concurrently); an offset is resolved only after its handler succeeded or the message
 * was dead-lettered, and kafkajs commits resolved offsets after each batch and before rejoining a rebalance.
 * A failure pauses just its partition and a timer resumes it (the next fetch restarts at the failed offset), so
 * the other partitions flow and heartbeats go on. A consumer that crashes for good is recreated with backoff.
 */
export class ConsumerMember {
  state: MemberState = 'starting';
  memberId?: string;
  assignment: Record<string, number[]> = {};
  lastError?: string;
  /**
   * "topic:partition" -> why it is stopped: a message exhausted its retries with dead letters off, or its
   * dead-letter write failed in a way that needs someone to act (topic missing, not authorized, too large).
   */
  readonly stoppedPartitions = new Map<string, string>();
  readonly counts = { processed: 0, failed: 0, deadLettered: 0 };

  private readonly logger: Logger;
  private readonly shutdown = new AbortController();
  private consumer?: Consumer;
  private readonly failures = new Map<string, PartitionFailure>();
  private readonly resumeTimers = new Map<string, NodeJS.Timeout>();
  private recreateTimer?: NodeJS.Timeout;
  private recreateAttempts = 0;
  private lastHeartbeatCheck = 0;
  private securityError?: ReturnType<ConsumerMember['securityFailure']>;

  constructor(private readonly config: ConsumerMemberConfig) {
    this.logger = new Logger(`ConsumerMember:${config.group.groupId}#${config.index}`);
  }

  get groupId(): string {
    return this.config.group.groupId;
  }

  get topics(): string[] {
    return [...this.config.routes.keys()];
  }

  /** The topics as log lines name them: "a", "b". */
  get topicList(): string {
    return this.topics.map((topic) => `"${topic}"`).join(', ');
  }

  /** Starts the consumer; never throws: a failed start is logged and retried with backoff. */
  async start(): Promise<void> {
    const consumer = this.createConsumer();
    this.consumer = consumer;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: this.topics, fromBeginning: this.config.group.fromBeginning });
      await consumer.run({
        autoCommit: true,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.config.group.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (error) {
      this.onDead(consumer, error);
    }
  }

  /**
   * Stops fetching, lets the in-flight messages finish (bounded by `timeoutMs`), commits what was processed and
   * leaves the group so the other members take the partitions at once.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.shutdown.abort();
    clearTimeout(this.recreateTimer);
    this.clearPartitionState();
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>(
        (resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)),
      );
      const result = await Promise.race([consumer.disconnect().catch((error: Error) => error), timedOut]);
      clearTimeout(timer);
      if (result === 'timeout') {
        this.logger.warn(
          `Shutdown timed out after ${timeoutMs} ms; uncommitted messages will be redelivered`,
        );
      } else if (result instanceof Error) {
        this.logger.warn(`Disconnect failed: ${result.message}`);
      }
    }
    this.state = 'stopped';
  }

  private createConsumer(): Consumer {
    const { kafka, group, clientRetry, assigners } = this.config;
    const consumer = kafka.consumer({
      groupId: group.groupId,
      partitionAssigners: assigners,
      allowAutoTopicCreation: false,
      ...group.consumer,
      retry: { ...clientRetry, restartOnFailure: async () => true },
    });
    const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events;
    consumer.on(GROUP_JOIN, ({ payload }) => {
      if (consumer !== this.consumer) return;
      this.state = 'joined';
      this.memberId = payload.memberId;
      this.assignment = payload.memberAssignment;
      this.lastError = undefined;
      this.recreateAttempts = 0;
      if (this.securityError) securityFailures.resolved(this.securityError);
      this.securityError = undefined;
      this.clearPartitionState();
      this.logger.log(`Joined as ${payload.memberId}, assigned ${JSON.stringify(payload.memberAssignment)}`);
    });
    consumer.on(REBALANCING, () => {
      if (consumer === this.consumer) this.state = 'rebalancing';
    });
    consumer.on(CRASH, ({ payload }) => {
      if (consumer !== this.consumer) return;
      this.clearPartitionState();
      if (payload.restart) {
        this.state = 'rebalancing';
        this.lastError = payload.error.message;
        // An unreachable broker is reported once by the broker connectivity lines, not on every restart.
        const level = isConnectionError(payload.error) ? 'debug' : 'warn';
        this.logger[level](
          `Consumer on ${this.topicList} crashed, kafkajs restarts it: ${payload.error.message}`,
        );
      } else {
        this.onDead(consumer, payload.error);
      }
    });
    return consumer;
  }

  /** The consumer cannot go on by itself (failed to start or crashed for good): recreate it with backoff. */
  private onDead(consumer: Consumer, error: unknown): void {
    if (consumer !== this.consumer || this.shutdown.signal.aborted) return;
    this.state = 'crashed';
    this.assignment = {};
    this.lastError = asError(error).message;
    const { initialDelayMs, maxDelayMs } = this.config.restartBackoff;
    let delay = Math.min(initialDelayMs * 2 ** this.recreateAttempts++, maxDelayMs);
    const security = (this.securityError = this.securityFailure(error));
    if (security) {
      this.lastError = security.message;
      const denied = security instanceof KafkaAuthorizationError;
      if (denied) {
        // Shown as stopped; no retry loop against a denial that only an ACL change can lift.
        this.state = 'stopped';
        delay = AUTHORIZATION_RECHECK_MS;
      }
      const what = `group ${this.groupId} member ${this.config.index} ${denied ? 'stopped' : 'cannot connect'}`;
      securityFailures.report(security, `${what}, trying again in ${delay} ms`);
    } else {
      const level = isConnectionError(error) ? 'debug' : 'warn';
      this.logger[level](
        `Consumer on ${this.topicList} stopped (${this.lastError}); recreating it in ${delay} ms`,
      );
    }
    this.consumer = undefined;
    consumer.disconnect().catch(() => undefined);
    this.recreateTimer = setTimeout(() => {
      if (!this.shutdown.signal.aborted) void this.start();
    }, delay);
  }

  /** An authentication or authorization failure of this member's consumer, named; undefined for other errors. */
  private securityFailure(error: unknown) {
    const { identity } = this.config;
    return (
      authenticationFailureOf(error, identity) ??
      authorizationFailureOf(error, identity, {
        operation: 'read',
        topics: this.topics,
        groupId: this.groupId,
      })
    );
  }

  /**
   * No `isStale()` check: the batch goes stale only after a `seek`, which this library never does (and does not
   * expose), so the check would only cost a string key per message.
   */
  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning } = payload;
    const { topic, partition } = batch;
    const route = this.config.routes.get(topic);
    if (!route) return;
    // A record batch kafkajs could not decode arrives as one stand-in record: a failure that no attempt can fix.
    const undecodable = undecodableBatchError(batch.messages);
    for (const message of batch.messages) {
      if (!isRunning()) return;
      const handled = await this.handle(route, partition, message, undecodable);
      if (!handled) {
        this.pausePartition(payload, route, partition);
        return;
      }
      resolveOffset(message.offset);
      // Lets kafkajs notice a rebalance between messages (it commits the resolved offsets before rejoining).
      // kafkajs sends a heartbeat only once per heartbeatInterval anyway; asking at most every 100 ms spares the
      // promise chain of each call on the hot path.
      const now = Date.now();
      if (now - this.lastHeartbeatCheck >= HEARTBEAT_CHECK_MS) {
        this.lastHeartbeatCheck = now;
        await heartbeat();
      }
    }
  }

  /** True when the offset may be resolved: handled, or dead-lettered. False leaves the partition paused. */
  private async handle(
    route: GroupRoute,
    partition: number,
    message: KafkaMessage,
    undecodable?: Error,
  ): Promise<boolean> {
    // Failures are rare: skip building the partition key on the hot path when there are none.
    const key = this.failures.size > 0 ? `${route.topic}:${partition}` : '';
    let failure = key ? this.failures.get(key) : undefined;
    if (failure && failure.offset !== message.offset) failure = undefined;
    if (failure?.exhausted) return this.deadLetter(route, partition, message, failure, failure.exhausted);

    const attempt = (failure?.attempts ?? 0) + 1;
    const { observer } = this.config;
    const started = observer ? performance.now() : 0;
    const error = undecodable ?? (await this.dispatch(route, partition, message, attempt));
    if (error === undefined) {
      if (failure) this.failures.delete(key);
      this.counts.processed++;
      observer?.processed(this.groupId, route.topic, partition, performance.now() - started);
      return true;
    }

    this.counts.failed++;
    observer?.failed(this.groupId, route.topic, partition);
    const cause = asError(error);
    failure ??= { offset: message.offset, attempts: 0 };
    failure.attempts = attempt;
    this.failures.set(`${route.topic}:${partition}`, failure);
    const where = `${route.topic}[${partition}]@${message.offset}`;
    if (isRetryable(error) && attempt < route.settings.retry.attempts) {
      this.logger.warn(
        `${route.handlerName} failed on ${where} (attempt ${attempt} of ${route.settings.retry.attempts}): ${printable(cause.message)}`,
      );
      return false;
    }
    failure.exhausted = cause;
    return this.deadLetter(route, partition, message, failure, cause);
  }

  private async dispatch(route: GroupRoute, partition: number, message: KafkaMessage, attempt: number) {
    const { limits, raw } = route.settings;
    const data = decodePayload(limits, raw, route.topic, partition, message);
    if (data instanceof KafkaNonRetryableError) return data;
    const context = new KafkaGroupContext(
      route.topic,
      partition,
      message,
      this.groupId,
      attempt,
      this.shutdown.signal,
    );
    return route.invoke(data, context);
  }

  /** True once the message is in its dead-letter topic; the write runs beside the fetch loop meanwhile. */
  private deadLetter(
    route: GroupRoute,
    partition: number,
    message: KafkaMessage,
    failure: PartitionFailure,
    error: Error,
  ): boolean {
    const where = `${route.topic}[${partition}]@${message.offset}`;
    const partitionKey = `${route.topic}:${partition}`;
    if (!route.settings.deadLetter.enabled) {
      this.stoppedPartitions.set(
        partitionKey,
        `dead letters are off and ${where} failed for good after ${failure.attempts} attempt(s): ${printable(error.message)}`,
      );
      this.logger.error(
        `${route.handlerName} failed on ${where} after ${failure.attempts} attempt(s) and dead letters are off: ` +
          `partition stopped until the next rebalance or restart. Last error: ${printable(error.message)}`,
        printableStack(error),
      );
      return false;
    }
    const write = (failure.deadLetter ??= this.startDeadLetter(route, partition, message, error));
    if (write.state !== 'written') return false;
    this.failures.delete(partitionKey);
    this.stoppedPartitions.delete(partitionKey);
    this.counts.deadLettered++;
    this.config.observer?.deadLettered(this.groupId, route.topic, partition);
    // The one line of a failed message that carries the stack trace (each attempt logged one line without it).
    this.logger.warn(
      `${route.handlerName} gave up on ${where} after ${failure.attempts} attempt(s) (${error.name}: ${printable(error.message)}); ` +
        `sent to ${route.deadLetterTopic}${write.stub ? ' as a stub record (too large for the topic)' : ''}\n` +
        printableStack(error),
    );
    return true;
  }

  /** Starts the write; its outcome stops the partition (reported) or resumes it to resolve the offset. */
  private startDeadLetter(route: GroupRoute, partition: number, message: KafkaMessage, error: Error) {
    const key = `${route.topic}:${partition}`;
    const consumer = this.consumer;
    const source = { topic: route.topic, partition, message, groupId: this.groupId, error };
    return this.config.deadLetters.start(
      route.deadLetterTopic,
      source,
      route.settings.deadLetter,
      (write) => {
        if (this.failures.get(key)?.deadLetter !== write) return;
        if (write.state === 'stopped') this.stoppedPartitions.set(key, write.reason!);
        if (write.state !== 'written' || !consumer || consumer !== this.consumer || this.state !== 'joined')
          return;
        try {
          consumer.resume([{ topic: route.topic, partitions: [partition] }]);
        } catch (resumeError) {
          // A consumer in kafkajs's crash path: the join that follows starts every partition afresh.
          this.logger.warn(`Could not resume ${key}: ${asError(resumeError).message}`);
        }
      },
    );
  }

  /** Pauses one partition and schedules its resumption: never a sleep inside the batch (it would stall the fetch). */
  private pausePartition(payload: EachBatchPayload, route: GroupRoute, partition: number): void {
    const key = `${route.topic}:${partition}`;
    payload.pause();
    const failure = this.failures.get(key);
    // A stopped partition waits for a rebalance; one waiting for its dead-letter write is resumed by the write.
    if (this.stoppedPartitions.has(key) || failure?.deadLetter) return;
    const delay = backoffDelay(route.settings.retry, failure?.attempts ?? 1);
    const consumer = this.consumer;
    clearTimeout(this.resumeTimers.get(key));
    this.resumeTimers.set(
      key,
      setTimeout(() => {
        this.resumeTimers.delete(key);
        if (consumer && consumer === this.consumer && this.state === 'joined') {
          consumer.resume([{ topic: route.topic, partitions: [partition] }]);
        }
      }, delay),
    );
  }

  /** Paused partitions survive a rebalance in kafkajs: after a join (or crash) start every partition afresh. */
  private clearPartitionState(): void {
    for (const timer of this.resumeTimers.values()) clearTimeout(timer);
    this.resumeTimers.clear();
    for (const failure of this.failures.values()) failure.deadLetter?.cancel();
    this.failures.clear();
    this.stoppedPartitions.clear();
    const consumer = this.consumer;
    if (consumer && this.state === 'joined') {
      const paused = consumer.paused();
      if (paused.length > 0) consumer.resume(paused);
    }
  }
}
