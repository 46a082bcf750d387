import { KafkaSeekTargetError } from '../errors/kafka-seek-target.error.js';
import { KafkaUnknownGroupTopicError } from '../errors/kafka-unknown-group-topic.error.js';

/**
 * Where `KafkaGroups.seek` moves a group on one topic: every partition, or the one named. `offset` is an offset
 * (number, or decimal string for offsets past 2^53), `'earliest'` (the first offset still in the log) or
 * `'latest'` (the log end: only what is produced from now on); `timestamp` (ms since the epoch, or a Date) is the
 * first message whose timestamp is at or after it, the log end where there is none.
 */
export type KafkaSeekTarget =
  | { topic: string; partition?: number; offset: number | string | 'earliest' | 'latest' }
  | { topic: string; partition?: number; timestamp: number | Date };

/** What a seek committed: per partition the group's new committed offset (the next message it reads). */
export interface KafkaSeekResult {
  groupId: string;
  topic: string;
  partitions: { partition: number; offset: string }[];
}

/** A seek target checked and normalised. */
export type SeekPlan = { topic: string; partition?: number } & (
  | { kind: 'offset'; offset: string }
  | { kind: 'earliest' | 'latest' }
  | { kind: 'timestamp'; timestamp: number }
);

/** One partition's offsets as the broker lists them: `low` the first still in the log, `high` the log end. */
export interface PartitionRange {
  partition: number;
  low: string;
  high: string;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** Checks a target before anything is stopped; throws KafkaSeekTargetError / KafkaUnknownGroupTopicError. */
export function planSeek(groupId: string, groupTopics: readonly string[], target: KafkaSeekTarget): SeekPlan {
  if (!target || typeof target !== 'object') {
    throw new KafkaSeekTargetError(
      groupId,
      'the target',
      'must be an object: { topic, partition?, offset | timestamp }',
    );
  }
  const { topic, partition } = target as { topic?: unknown; partition?: unknown };
  if (typeof topic !== 'string' || topic === '') {
    throw new KafkaSeekTargetError(groupId, 'topic', `must be a topic name, got ${JSON.stringify(topic)}`);
  }
  if (!groupTopics.includes(topic)) throw new KafkaUnknownGroupTopicError(groupId, topic, groupTopics);
  if (partition !== undefined && !(Number.isInteger(partition) && (partition as number) >= 0)) {
    throw new KafkaSeekTargetError(
      groupId,
      'partition',
      `must be an integer >= 0, got ${JSON.stringify(partition)}`,
    );
  }
  const base = { topic, ...(partition !== undefined && { partition: partition as number }) };
  const hasOffset = 'offset' in target && target.offset !== undefined;
  const hasTimestamp = 'timestamp' in target && target.timestamp !== undefined;
  if (hasOffset === hasTimestamp) {
    throw new KafkaSeekTargetError(
      groupId,
      'offset / timestamp',
      hasOffset
        ? 'are both given: give one of them'
        : 'are both missing: give an offset, "earliest", "latest" or a timestamp',
    );
  }
  if (hasTimestamp) {
    const value = (target as { timestamp: unknown }).timestamp;
    const timestamp = value instanceof Date ? value.getTime() : value;
    if (typeof timestamp !== 'number' || !Number.isInteger(timestamp) || timestamp < 0) {
      throw new KafkaSeekTargetError(
        groupId,
        'timestamp',
        `must be milliseconds since the epoch (an integer >= 0) or a valid Date, got ${JSON.stringify(value)}`,
      );
    }
    return { ...base, kind: 'timestamp', timestamp };
  }
  const offset = (target as { offset: unknown }).offset;
  if (offset === 'earliest' || offset === 'latest') return { ...base, kind: offset };
  const text = typeof offset === 'number' && Number.isSafeInteger(offset) ? String(offset) : offset;
  if (typeof text !== 'string' || !DECIMAL.test(text)) {
    throw new KafkaSeekTargetError(
      groupId,
      'offset',
      `must be an offset >= 0 (a safe integer or a decimal string), "earliest" or "latest", got ${JSON.stringify(offset)}`,
    );
  }
  return { ...base, kind: 'offset', offset: text };
}

/**
 * The offsets to commit, per partition of the plan, from the topic's ranges (and, for a timestamp, the offsets the
 * broker found for it). An explicit offset must lie within the log (low..high): one outside it would be reset by
 * the out-of-range policy instead of being read from.
 */
export function seekOffsets(
  groupId: string,
  plan: SeekPlan,
  ranges: readonly PartitionRange[],
  byTimestamp: readonly { partition: number; offset: string }[] = [],
): { partition: number; offset: string }[] {
  const chosen =
    plan.partition === undefined ? ranges : ranges.filter((range) => range.partition === plan.partition);
  if (chosen.length === 0) {
    throw new KafkaSeekTargetError(
      groupId,
      'partition',
      `${plan.partition} does not exist: topic "${plan.topic}" has partitions 0..${ranges.length - 1}`,
    );
  }
  return [...chosen]
    .sort((a, b) => a.partition - b.partition)
    .map(({ partition, low, high }) => {
      switch (plan.kind) {
        case 'earliest':
          return { partition, offset: low };
        case 'latest':
          return { partition, offset: high };
        case 'timestamp': {
          const found = byTimestamp.find((entry) => entry.partition === partition);
          return { partition, offset: found?.offset ?? high };
        }
        case 'offset': {
          const beyond = BigInt(plan.offset) > BigInt(high);
          if (BigInt(plan.offset) < BigInt(low) || beyond) {
            // The end is read read_committed: kafka-consumer-groups shows the high watermark, further on while a
            // transaction is open.
            const end = beyond
              ? 'log end as the group reads it: the last stable offset while a transaction is open there, which ' +
                'holds back what follows it until it ends'
              : 'log end';
            throw new KafkaSeekTargetError(
              groupId,
              'offset',
              `${plan.offset} is outside ${plan.topic}[${partition}], which holds offsets ${low} to ${high} (${end})`,
            );
          }
          return { partition, offset: plan.offset };
        }
      }
    });
}
