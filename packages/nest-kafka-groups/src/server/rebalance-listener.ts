import type { Logger } from '@nestjs/common';
import { printable, printableStack } from '../logging/printable.js';
import { asError } from '../retry/failure-classifier.js';

/** One partition of a topic (Java's `TopicPartition`). */
export interface KafkaTopicPartition {
  topic: string;
  partition: number;
}

/** What a KafkaRebalanceListener is told, for one member of the group in this process. */
export interface KafkaRebalanceEvent {
  groupId: string;
  /** The member id the group coordinator gave this member at the join the partitions came with. */
  memberId: string;
  /** 0-based index of the member in this process (a group runs `concurrency` members). */
  memberIndex: number;
  /** The member's partitions, retry topics included, sorted by topic then partition; may be empty. */
  partitions: readonly KafkaTopicPartition[];
}

/**
 * Spring's `ConsumerRebalanceListener` for one consumer group: give its class as `rebalanceListener` in
 * `KafkaModule.forFeature` and list it in the same module's `providers` (a singleton, so it can inject the
 * module's services). Each method is optional and may return a promise, which the member awaits before it goes
 * on; a method that throws is logged (group, member and partitions named) and the rebalance goes on.
 *
 * Every `onPartitionsAssigned` is followed, before the member's next one, by exactly one `onPartitionsRevoked` or
 * `onPartitionsLost` with the same partitions (kafkajs rebalances eagerly: every rejoin gives up all of them).
 */
export interface KafkaRebalanceListener {
  /**
   * After each join of the member (the first one included), before any message of the new assignment is fetched.
   * Called even with no partitions.
   */
  onPartitionsAssigned?(event: KafkaRebalanceEvent): void | Promise<void>;
  /**
   * The member gives the partitions up (before it rejoins a rebalance, before it leaves the group when the group
   * or the application stops, or after its consumer crashed) and every message of them it handled is finished and
   * its offset committed: flush per-partition state here. Messages not handled yet are the next owner's.
   */
  onPartitionsRevoked?(event: KafkaRebalanceEvent): void | Promise<void>;
  /**
   * The member gave the partitions up without that guarantee: it found it was no longer in the group (evicted
   * after missing its session or rebalance timeout; its commits are refused), or the final commit failed. Another
   * member may own them already and may have handled messages after the last commit: discard their state.
   */
  onPartitionsLost?(event: KafkaRebalanceEvent): void | Promise<void>;
}

type ListenerMethod = 'onPartitionsAssigned' | 'onPartitionsRevoked' | 'onPartitionsLost';

/**
 * Calls a group's rebalance listeners for one member, one call after the other, pairing each assignment with the
 * revocation or loss that ends it. Never rejects: a listener's error is logged.
 */
export class MemberRebalanceListeners {
  private owned?: { memberId: string; partitions: KafkaTopicPartition[] };
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly listeners: readonly KafkaRebalanceListener[],
    private readonly groupId: string,
    private readonly memberIndex: number,
    private readonly logger: Logger,
  ) {}

  /** The member joined with `assignment`. */
  assigned(memberId: string, assignment: Readonly<Record<string, readonly number[]>>): Promise<void> {
    return this.serially(async () => {
      // A join whose predecessor was not given up through the hooks: its partitions went without the guarantee.
      if (this.owned) await this.call('onPartitionsLost', this.owned);
      this.owned = { memberId, partitions: partitionsOf(assignment) };
      await this.call('onPartitionsAssigned', this.owned);
    });
  }

  /** The member gives up what it was last assigned; `revoked` when the revocation guarantee holds. */
  givenUp(revoked: boolean): Promise<void> {
    return this.serially(async () => {
      const owned = this.owned;
      if (!owned) return;
      this.owned = undefined;
      await this.call(revoked ? 'onPartitionsRevoked' : 'onPartitionsLost', owned);
    });
  }

  private serially(step: () => Promise<void>): Promise<void> {
    this.last = this.last.then(step);
    return this.last;
  }

  private async call(method: ListenerMethod, owned: { memberId: string; partitions: KafkaTopicPartition[] }) {
    const event: KafkaRebalanceEvent = {
      groupId: this.groupId,
      memberId: owned.memberId,
      memberIndex: this.memberIndex,
      partitions: owned.partitions,
    };
    for (const listener of this.listeners) {
      try {
        await listener[method]?.(event);
      } catch (error) {
        const cause = asError(error);
        this.logger.error(
          `${listener.constructor.name}.${method} failed for group "${this.groupId}" member ${this.memberIndex} ` +
            `(${owned.memberId}) on ${describePartitions(owned.partitions)}: ${printable(cause.message)}; ` +
            'the rebalance goes on',
          printableStack(cause),
        );
      }
    }
  }
}

/** The assignment as sorted partitions (topic, then partition number). */
export function partitionsOf(assignment: Readonly<Record<string, readonly number[]>>): KafkaTopicPartition[] {
  return Object.keys(assignment)
    .sort()
    .flatMap((topic) =>
      [...assignment[topic]].sort((a, b) => a - b).map((partition) => ({ topic, partition })),
    );
}

/** "a[0,1], b[2]" for log lines; "no partitions" when empty. */
export function describePartitions(partitions: readonly KafkaTopicPartition[]): string {
  if (partitions.length === 0) return 'no partitions';
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of partitions) {
    const list = byTopic.get(topic) ?? [];
    list.push(partition);
    byTopic.set(topic, list);
  }
  return [...byTopic].map(([topic, list]) => `${topic}[${list.join(',')}]`).join(', ');
}
