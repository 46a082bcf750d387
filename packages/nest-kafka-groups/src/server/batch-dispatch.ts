import type { Logger } from '@nestjs/common';
import type { EachBatchPayload, KafkaMessage } from '../client/kafkajs.js';
import { KafkaBatchContext } from '../context/kafka-batch.context.js';
import { KafkaBatchFailedError } from '../errors/kafka-batch-failed.error.js';
import { KafkaNonRetryableError } from '../errors/kafka-non-retryable.error.js';
import { decodePayload } from '../limits/message-limits.js';
import { printable } from '../logging/printable.js';
import { asError, httpExceptionReasons } from '../retry/failure-classifier.js';
import type { BatchWatch } from './batch-watch.js';
import { DEAD_LETTER, decide, type FailureDecision, RESOLVE } from './failure-policy.js';
import type { GroupRoute } from './group-route.js';
import type { MemberObserver } from './member-observer.js';
import { compareOffsets, type PartitionFailure, type PartitionLedger } from './partition-ledger.js';

/** The batch ends here: the partition paused or stopped, a rejoin happened, or the member is stopping. */
const STOPPED = -1;

/** What a batch call's outcome means for its messages. */
export interface BatchOutcome {
  /** Messages of the call, from its first, that count as handled (their offsets are resolved). */
  handled: number;
  /**
   * The failure left, if any: `whole` for an error that names no message (the call is retried as a whole), else
   * the message at index `handled` failed with `error` (a KafkaBatchFailedError's cause).
   */
  failure?: { error: unknown; whole: boolean };
}

/**
 * Reads a batch call's outcome (`undefined`: success) for a call of `size` messages. A KafkaBatchFailedError with an
 * index inside the call hands the messages before it; one whose index is outside fails the whole call (the error
 * itself says which index it named).
 */
export function batchOutcome(outcome: unknown, size: number): BatchOutcome {
  if (outcome === undefined) return { handled: size };
  if (
    outcome instanceof KafkaBatchFailedError &&
    Number.isInteger(outcome.index) &&
    outcome.index >= 0 &&
    outcome.index < size
  ) {
    return { handled: outcome.index, failure: { error: outcome.cause ?? outcome, whole: false } };
  }
  return { handled: 0, failure: { error: outcome, whole: true } };
}

/** The parts of its member a batch dispatch works with (the member passes closures over its private state). */
export interface BatchMember {
  readonly groupId: string;
  readonly ledger: PartitionLedger;
  readonly logger: Logger;
  readonly counts: { processed: number; failed: number; deadLettered: number };
  readonly observer?: MemberObserver;
  /** Whether the member began stopping (a stopped member may be started again: asked each time). */
  stopping(): boolean;
  /** The member's generation now (bumped on every join and crash). */
  generation(): number;
  /**
   * The member's per-message path with `error` as the handler's outcome: retry, dead-letter (or, for a message whose
   * handler gave up, its dead-letter write), stop or release, exactly as for a single-message handler.
   */
  failMessage(
    route: GroupRoute,
    partition: number,
    key: string,
    message: KafkaMessage,
    watch: BatchWatch,
    error: Error,
  ): Promise<FailureDecision>;
  stopPartition(
    route: GroupRoute,
    key: string,
    where: string,
    failure: PartitionFailure,
    error: Error,
  ): FailureDecision;
  pausePartition(
    payload: EachBatchPayload,
    route: GroupRoute,
    partition: number,
    key: string,
    decision: FailureDecision,
  ): void;
}

/**
 * Runs a fetched batch for a batch handler (`@KafkaHandler(topic, { batch: true })`): calls of at most
 * `maxBatchSize` messages in offset order, each through the handler's Nest pipeline once. The guarantees are the
 * single-message ones, per message: an offset is resolved only once its message was handled (the call succeeded,
 * or a KafkaBatchFailedError pointed after it) or dead-lettered. A message that cannot be decoded, breaks a limit
 * or fails the `items` pipes ends the call before it and then takes the single-message path (dead-lettered alone).
 * A KafkaBatchFailedError at `index` takes the message there down the single-message path (its own attempt count);
 * any other error retries the whole call, and after its last attempt every message of the call is dead-lettered.
 */
export class BatchDispatch {
  constructor(private readonly member: BatchMember) {}

  /** Handles `messages[start..]` of the fetched batch; returns early when the partition paused or stopped. */
  async run(
    payload: EachBatchPayload,
    route: GroupRoute,
    key: string,
    start: number,
    watch: BatchWatch,
    generation: number,
    undecodable: Error | undefined,
  ): Promise<void> {
    const { member } = this;
    const { resolveOffset, isRunning } = payload;
    const { partition, messages } = payload.batch;
    let lastResolved: string | undefined;
    const resolve = (offset: string): void => {
      resolveOffset(offset);
      lastResolved = offset;
    };
    try {
      let index = start;
      while (index < messages.length) {
        if (!isRunning() || generation !== member.generation() || watch.topicDeleted) return;
        const first = messages[index];
        watch.current = first;

        const exhausted = this.exhaustedFailure(key, first);
        if (exhausted) {
          const decision = await member.failMessage(route, partition, key, first, watch, exhausted);
          if (generation !== member.generation() || watch.topicDeleted) return;
          if (decision !== RESOLVE) return this.pause(payload, route, partition, key, decision);
          resolve(first.offset);
          index++;
          if (this.afterResolve(watch)) return;
          continue;
        }

        const call = await this.collect(route, partition, key, messages, index, undecodable);
        if (generation !== member.generation() || watch.topicDeleted) return;
        if (call.messages.length > 0) {
          const done = await this.invoke(
            payload,
            route,
            key,
            call.messages,
            call.payloads,
            watch,
            generation,
            resolve,
          );
          if (done === STOPPED) return;
          index += done;
          if (done > 0 && this.afterResolve(watch)) return;
          // Not every message of the call was handled: what is left is decided from `index` on.
          if (done < call.messages.length) continue;
        }
        if (call.rejected) {
          const decision = await member.failMessage(
            route,
            partition,
            key,
            messages[index],
            watch,
            call.rejected,
          );
          if (generation !== member.generation() || watch.topicDeleted) return;
          if (decision !== RESOLVE) return this.pause(payload, route, partition, key, decision);
          resolve(messages[index].offset);
          index++;
          if (this.afterResolve(watch)) return;
        }
      }
    } finally {
      if (lastResolved !== undefined && generation === member.generation())
        member.ledger.setLastResolved(key, lastResolved);
    }
  }

  /**
   * The next call's messages from `start`: up to `maxBatchSize`, decoded (and run through the `items` pipes),
   * ending before the first message that cannot be handed over (`rejected`, its error) and before a message whose
   * handler already gave up (only its dead-letter write is left).
   */
  private async collect(
    route: GroupRoute,
    partition: number,
    key: string,
    messages: KafkaMessage[],
    start: number,
    undecodable: Error | undefined,
  ) {
    const { maxBatchSize, validateItem } = route.batch!;
    const { limits, raw } = route.settings;
    const { ledger } = this.member;
    const failure = ledger.hasFailures ? ledger.failure(key) : undefined;
    const givenUp = failure?.exhausted ? failure.offset : undefined;
    const call = {
      messages: [] as KafkaMessage[],
      payloads: [] as unknown[],
      rejected: undefined as Error | undefined,
    };
    for (let at = start; at < messages.length && call.messages.length < maxBatchSize; at++) {
      const message = messages[at];
      if (at > start && message.offset === givenUp) break;
      let value: unknown = undecodable ?? decodePayload(limits, raw, route.topic, partition, message);
      if (value instanceof KafkaNonRetryableError || value === undecodable) {
        call.rejected = value as Error;
        break;
      }
      if (validateItem) {
        try {
          value = await validateItem(value);
        } catch (error) {
          call.rejected = itemRejection(error);
          break;
        }
      }
      call.messages.push(message);
      call.payloads.push(value);
    }
    return call;
  }

  /**
   * One call through the handler's pipeline and what follows from its outcome: how many messages of the call, from
   * its first, are done (resolved), or STOPPED when the partition paused or stopped, or the batch must end. After a
   * whole call failed for good none is done yet: each is dead-lettered from the loop.
   */
  private async invoke(
    payload: EachBatchPayload,
    route: GroupRoute,
    key: string,
    messages: KafkaMessage[],
    payloads: unknown[],
    watch: BatchWatch,
    generation: number,
    resolve: (offset: string) => void,
  ): Promise<number> {
    const { member } = this;
    const { partition } = payload.batch;
    const first = messages[0];
    const failure = member.ledger.hasFailures ? member.ledger.failureAt(key, first.offset) : undefined;
    const attempt = (failure?.attempts ?? 0) + 1;
    const { observer } = member;
    const started = observer ? performance.now() : 0;
    const context = new KafkaBatchContext(
      route.topic,
      partition,
      messages,
      member.groupId,
      attempt,
      watch.controller.signal,
    );
    const error = await route.invoke(payloads, context);
    if (generation !== member.generation() || watch.topicDeleted) return STOPPED;
    // A handler that gave up because it ran too long failed by timeout, whatever it threw.
    const { handled, failure: left } = batchOutcome(
      error === undefined ? undefined : (watch.timedOut ?? error),
      messages.length,
    );
    if (handled > 0) {
      if (failure) member.ledger.settled(key);
      resolve(messages[handled - 1].offset);
      member.counts.processed += handled;
      if (observer) {
        const share = (performance.now() - started) / handled;
        for (let i = 0; i < handled; i++) observer.processed(member.groupId, route.topic, partition, share);
      }
    }
    if (!left) return handled;
    if (!left.whole) {
      const message = messages[handled];
      const decision = await member.failMessage(route, partition, key, message, watch, asError(left.error));
      if (generation !== member.generation() || watch.topicDeleted) return STOPPED;
      if (decision !== RESOLVE) {
        this.pause(payload, route, partition, key, decision);
        return STOPPED;
      }
      resolve(message.offset);
      return handled + 1;
    }
    const decision = this.failCall(route, partition, key, messages, attempt, left.error);
    if (decision === DEAD_LETTER) return 0;
    this.pause(payload, route, partition, key, decision);
    return STOPPED;
  }

  /**
   * The whole call failed: retry it, stop the partition, release it (shutdown), or (DEAD_LETTER) record that each
   * of its messages goes to the dead-letter topic.
   */
  private failCall(
    route: GroupRoute,
    partition: number,
    key: string,
    messages: KafkaMessage[],
    attempt: number,
    outcome: unknown,
  ): FailureDecision {
    const { member } = this;
    const first = messages[0].offset;
    const last = messages[messages.length - 1].offset;
    const where = `${route.topic}[${partition}]@${first}..${last}`;
    const cause = asError(outcome);
    const decision = decide(outcome, attempt, member.stopping(), route.settings);
    if (decision.action === 'release') {
      member.logger.log(
        `${where} failed during shutdown (${printable(cause.message)}): left uncommitted, redelivered after restart`,
      );
      return decision;
    }
    member.counts.failed += messages.length;
    for (let i = 0; member.observer && i < messages.length; i++)
      member.observer.failed(member.groupId, route.topic, partition);
    const recorded = member.ledger.failed(key, first, attempt);
    if (decision.action === 'retry') {
      member.logger.warn(
        `${route.handlerName} failed on the ${messages.length} message(s) of ${where} ` +
          `(attempt ${attempt} of ${route.settings.retry.attempts}): ${printable(cause.message)}`,
      );
      return decision;
    }
    if (decision.action === 'stop') return member.stopPartition(route, key, where, recorded, cause);
    recorded.exhausted = cause;
    member.ledger.setExhaustedBatch(key, { from: first, through: last, attempts: attempt, error: cause });
    return DEAD_LETTER;
  }

  /**
   * The error to dead-letter `message` with when its handler already gave up on it (on its own, or as part of a
   * call that failed for good); undefined when the message is to be handed to the handler.
   */
  private exhaustedFailure(key: string, message: KafkaMessage): Error | undefined {
    const { ledger } = this.member;
    const batch = ledger.exhaustedBatch(key);
    if (batch) {
      if (compareOffsets(message.offset, batch.through) > 0) {
        ledger.setExhaustedBatch(key, undefined);
      } else if (compareOffsets(message.offset, batch.from) >= 0) {
        const failure = ledger.failureAt(key, message.offset);
        if (failure?.exhausted) return failure.exhausted;
        ledger.failed(key, message.offset, batch.attempts).exhausted = batch.error;
        return batch.error;
      }
    }
    if (!ledger.hasFailures) return undefined;
    return ledger.failureAt(key, message.offset)?.exhausted;
  }

  private pause(
    payload: EachBatchPayload,
    route: GroupRoute,
    partition: number,
    key: string,
    decision: FailureDecision,
  ): void {
    if (decision.action !== 'release') this.member.pausePartition(payload, route, partition, key, decision);
  }

  /**
   * As after each single message: a failed heartbeat is thrown (kafkajs commits what was resolved and rejoins), and
   * after a timeout the batch ends (its signal stays aborted; the next fetch goes on with a fresh one).
   */
  private afterResolve(watch: BatchWatch): boolean {
    if (watch.heartbeatError !== undefined) throw watch.heartbeatError;
    return watch.timedOut !== undefined;
  }
}

/** An element the `items` pipes refused, with the reasons a ValidationPipe gives in its message. */
function itemRejection(error: unknown): Error {
  const rejection = asError(error);
  const reasons = httpExceptionReasons(error);
  if (reasons !== undefined) rejection.message = reasons;
  return rejection;
}
