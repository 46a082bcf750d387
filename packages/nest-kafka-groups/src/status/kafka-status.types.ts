import type { MemberState } from '../server/consumer-member.js';

/** Messages handled by this process's members since they started. */
export interface KafkaMessageCounts {
  /** Messages whose handler succeeded. */
  processed: number;
  /** Failed handler attempts (a message retried twice and then handled counts 2 here and 1 in processed). */
  failed: number;
  /** Messages that exhausted their attempts and went to the dead-letter topic. */
  deadLettered: number;
}

/** One member of a group running in this process. */
export interface KafkaMemberStatus {
  /** The id the coordinator gave it; null until it joined. */
  memberId: string | null;
  state: MemberState;
  /** topic -> assigned partitions, as of the last join. */
  assignment: Record<string, number[]>;
  counts: KafkaMessageCounts;
  /** Partitions held at a message that cannot go on by itself (dead letters off, or a dead-letter write that needs someone to act), with why. */
  stoppedPartitions: KafkaStoppedPartition[];
  lastError: string | null;
}

/** A partition held at a message that cannot go on by itself. */
export interface KafkaStoppedPartition {
  /** The stopped partition's topic. */
  topic: string;
  /** The stopped partition. */
  partition: number;
  /** Names the message, the source topic and, for a failed dead-letter write, the dead-letter topic and error. */
  reason: string;
}

/** Committed offset and lag of one partition of a group's topic, as the broker sees them. */
export interface KafkaPartitionStatus {
  topic: string;
  partition: number;
  /** The next offset the group will read; null when the group committed nothing on this partition yet. */
  committedOffset: number | null;
  /**
   * Log-end offset as the group's read_committed fetches see it: the last stable offset, which is the high watermark
   * unless a transaction is open on the partition (then its first record's offset: what waits behind it is not lag).
   */
  logEndOffset: number;
  /** logEndOffset - committedOffset; with nothing committed, every message still in the log (end - start). */
  lag: number;
  /** The member that holds the partition: one of this process, else as the coordinator describes the group. */
  memberId: string | null;
  /** Client id of that member (tells which service or process holds the partition); null when unknown. */
  clientId: string | null;
}

/** What `KafkaStatusService.groups()` reports for one consumer group. */
export interface KafkaGroupStatus {
  /** The consumer group id. */
  groupId: string;
  /** The topics its handlers consume. */
  topics: string[];
  /**
   * The coordinator's view: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead for a classic group; Stable,
   * Assigning, Reconciling, Empty, Dead for a group of the consumer group protocol; null if unknown.
   */
  state: string | null;
  /** The group's protocol (see `KafkaGroupProtocol`); null if unknown or the group does not exist. */
  groupProtocol: KafkaGroupProtocol | null;
  /** Members of the group in every process, as the coordinator lists them; null if unknown. */
  groupMembers: number | null;
  /** Members running in this process. */
  members: KafkaMemberStatus[];
  /** Sum over this process's members. */
  counts: KafkaMessageCounts;
  /** Per partition of every topic; null when the broker could not be asked (see `error`). */
  partitions: KafkaPartitionStatus[] | null;
  /** Sum of the partitions' lag; null when unknown. */
  lag: number | null;
  /** Why `state`, `groupMembers` or `partitions` are missing. */
  error?: string;
  /** Why this process has not started the group's members yet (a missing topic, a broker that does not answer). */
  startProblem?: string;
}

/** What this process knows of one of its groups without asking the broker. */
export type KafkaLocalGroupStatus = Pick<
  KafkaGroupStatus,
  'groupId' | 'topics' | 'members' | 'counts' | 'startProblem'
>;

/**
 * How the broker runs a group: `classic` (JoinGroup/SyncGroup, the protocol of this library's kafkajs members) or
 * `consumer` (KIP-848: the broker assigns; a Java consumer with `group.protocol=consumer` joined it, and the classic
 * members in it, this library's among them, go on through JoinGroup). A `consumer` group is described with
 * ConsumerGroupDescribe; on a broker without it (before Kafka 3.7) its state and members are null.
 */
export type KafkaGroupProtocol = 'classic' | 'consumer';

/** Offsets of one group as fetched from the broker. */
export interface KafkaGroupOffsets {
  state: string | null;
  groupProtocol: KafkaGroupProtocol | null;
  groupMembers: number | null;
  partitions: Omit<KafkaPartitionStatus, 'memberId' | 'clientId'>[];
  /** "topic:partition" -> the member holding it, from the group description (every process). */
  owners: Map<string, { memberId: string; clientId: string }>;
  /** Every member of the group, in every process, as the coordinator describes it. */
  members: KafkaGroupMember[];
}

/** One member of a group as the coordinator describes it (any process, any client). */
export interface KafkaGroupMember {
  memberId: string;
  clientId: string;
  /** The address the coordinator saw the member connect from, e.g. `/10.0.0.7`. */
  clientHost: string;
  /** topic -> partitions, decoded from the member's assignment; empty when it cannot be decoded. */
  assignment: Record<string, number[]>;
  /**
   * How the member joined: `classic` (JoinGroup) or `consumer` (KIP-848 heartbeats); null when the broker does not
   * say (ConsumerGroupDescribe before version 1).
   */
  protocol: KafkaGroupProtocol | null;
}
