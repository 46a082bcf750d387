import type { MemberState } from '../server/consumer-member.js';
import type {
  KafkaGroupOffsets,
  KafkaGroupProtocol,
  KafkaMessageCounts,
  KafkaStoppedPartition,
} from '../status/kafka-status.types.js';

/** A member of the group running in this process, as the page needs it. */
export interface LocalMember {
  memberId: string | null;
  state: MemberState;
  assignment: Record<string, number[]>;
  counts: KafkaMessageCounts;
  stoppedPartitions: KafkaStoppedPartition[];
  pausedPartitions: { topic: string; partitions: number[] }[];
  lastError: string | null;
}

/** Messages per second since the previous sample; null on the first sample. */
export interface Rates {
  processedPerSec: number | null;
  failedPerSec: number | null;
}

/** A member of the group (of any process), as the page shows it. */
export interface UiMemberView {
  /** Null for a member of this process that has not joined yet. */
  memberId: string | null;
  /** Its client id; null when unknown. */
  clientId: string | null;
  /** Where the coordinator saw the member connect from; null when unknown. */
  host: string | null;
  /** How it joined the group (classic: JoinGroup; consumer: KIP-848), as the coordinator says; null when unknown. */
  protocol: KafkaGroupProtocol | null;
  /** Runs in this process (counts, rates and state are known only for these). */
  local: boolean;
  /** Its state; null for a member of another process. */
  state: MemberState | null;
  /** topic -> partitions it holds. */
  assignment: Record<string, number[]>;
  /** Its counts; null for a member of another process. */
  counts: KafkaMessageCounts | null;
  /** Messages per second; null for a member of another process. */
  rates: Rates | null;
  /** Its last error; null when none. */
  lastError: string | null;
}

/** One partition of a group's topic, as the page shows it. */
export interface UiPartitionView {
  /** The topic. */
  topic: string;
  /** The partition. */
  partition: number;
  /** The member holding it: this process's view first, then the coordinator's; null when nobody does. */
  memberId: string | null;
  /** Log end minus committed offset; null when unknown. */
  lag: number | null;
  /** The group's committed offset; null when none or unknown. */
  committedOffset: number | null;
  /** The log-end offset; null when unknown. */
  logEndOffset: number | null;
  /** Paused by a member of this process (retry backoff, dead-letter write, stopped). */
  paused: boolean;
  /** Why the partition is stopped; null when it is not. */
  stopped: string | null;
}

/** One consumer group, as the page and its event stream show it. */
export interface UiGroupView {
  /** The consumer group id. */
  groupId: string;
  /** The topics its handlers consume. */
  topics: string[];
  /** The coordinator's view: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead; null if unknown. */
  state: string | null;
  /** classic, or consumer when a KIP-848 member joined it (the broker assigns); null if unknown. */
  groupProtocol: KafkaGroupProtocol | null;
  /** Why the broker could not be asked (state, peers, offsets and lag are then unknown). */
  error: string | null;
  /** Why this process has not started the group's members yet; null when started. */
  startProblem: string | null;
  /** Every member of the group, of every process. */
  members: UiMemberView[];
  /** Every partition of its topics. */
  partitions: UiPartitionView[];
  /** Sums over this process's members. */
  counts: KafkaMessageCounts;
  /** Messages per second of this process's members. */
  rates: Rates;
  /** Sum of the partitions' lag; null when unknown. */
  lag: number | null;
}

export interface GroupInput {
  groupId: string;
  topics: string[];
  startProblem?: string;
  /** The client id of this process's members (shown until the coordinator describes them). */
  clientId: string | null;
  members: { member: LocalMember; rates: Rates }[];
  /** The broker's answer, or why there is none. */
  offsets: KafkaGroupOffsets | { error: string };
}

/** Merges this process's members with the coordinator's description of the group into what the page shows. */
export function groupView(input: GroupInput): UiGroupView {
  const offsets = 'error' in input.offsets ? undefined : input.offsets;
  const locals = new Map(
    input.members.filter(({ member }) => member.memberId !== null).map((m) => [m.member.memberId!, m]),
  );
  const members: UiMemberView[] = [];
  const described = [...(offsets?.members ?? [])].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
  for (const peer of described) {
    const local = locals.get(peer.memberId);
    members.push({
      memberId: peer.memberId,
      clientId: peer.clientId,
      host: peer.clientHost,
      protocol: peer.protocol,
      local: local !== undefined,
      state: local?.member.state ?? null,
      assignment: local ? local.member.assignment : peer.assignment,
      counts: local ? local.member.counts : null,
      rates: local ? local.rates : null,
      lastError: local?.member.lastError ?? null,
    });
  }
  const listed = new Set(described.map((m) => m.memberId));
  for (const { member, rates } of input.members) {
    if (member.memberId !== null && listed.has(member.memberId)) continue;
    members.push({
      memberId: member.memberId,
      clientId: input.clientId,
      host: null,
      protocol: null,
      local: true,
      state: member.state,
      assignment: member.assignment,
      counts: member.counts,
      rates,
      lastError: member.lastError,
    });
  }

  const localOwner = new Map<string, string>();
  const paused = new Set<string>();
  const stopped = new Map<string, string>();
  for (const { member } of input.members) {
    if (member.memberId !== null) {
      for (const [topic, partitions] of Object.entries(member.assignment)) {
        for (const partition of partitions) localOwner.set(`${topic}:${partition}`, member.memberId);
      }
    }
    for (const { topic, partitions } of member.pausedPartitions) {
      for (const partition of partitions) paused.add(`${topic}:${partition}`);
    }
    for (const { topic, partition, reason } of member.stoppedPartitions)
      stopped.set(`${topic}:${partition}`, reason);
  }
  const view = (topic: string, partition: number, broker?: KafkaGroupOffsets['partitions'][number]) => {
    const key = `${topic}:${partition}`;
    return {
      topic,
      partition,
      memberId: localOwner.get(key) ?? offsets?.owners.get(key)?.memberId ?? null,
      lag: broker?.lag ?? null,
      committedOffset: broker?.committedOffset ?? null,
      logEndOffset: broker?.logEndOffset ?? null,
      paused: paused.has(key) || stopped.has(key),
      stopped: stopped.get(key) ?? null,
    };
  };
  // Without the broker only the partitions this process holds are known.
  const partitions: UiPartitionView[] = offsets
    ? offsets.partitions.map((p) => view(p.topic, p.partition, p))
    : [...localOwner.keys()]
        .map((key) => {
          const at = key.lastIndexOf(':');
          return view(key.slice(0, at), Number(key.slice(at + 1)));
        })
        .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));

  const counts = { processed: 0, failed: 0, deadLettered: 0 };
  let processedPerSec: number | null = null;
  let failedPerSec: number | null = null;
  for (const { member, rates } of input.members) {
    counts.processed += member.counts.processed;
    counts.failed += member.counts.failed;
    counts.deadLettered += member.counts.deadLettered;
    if (rates.processedPerSec !== null) processedPerSec = (processedPerSec ?? 0) + rates.processedPerSec;
    if (rates.failedPerSec !== null) failedPerSec = (failedPerSec ?? 0) + rates.failedPerSec;
  }
  return {
    groupId: input.groupId,
    topics: input.topics,
    state: offsets?.state ?? null,
    groupProtocol: offsets?.groupProtocol ?? null,
    error: 'error' in input.offsets ? input.offsets.error : null,
    startProblem: input.startProblem ?? null,
    members,
    partitions,
    counts,
    rates: { processedPerSec, failedPerSec },
    lag: offsets ? offsets.partitions.reduce((sum, p) => sum + p.lag, 0) : null,
  };
}

/** Counts per second between two samples of one member. */
export class RateMeter {
  private previous = new Map<object, { at: number; counts: KafkaMessageCounts }>();

  /** The rates of `key` since its last call; keys not measured in the last round are forgotten by `sweep`. */
  measure(key: object, at: number, counts: KafkaMessageCounts): Rates {
    const before = this.previous.get(key);
    this.previous.set(key, { at, counts: { ...counts } });
    if (!before || at <= before.at) return { processedPerSec: null, failedPerSec: null };
    const seconds = (at - before.at) / 1000;
    return {
      processedPerSec: Math.max(0, counts.processed - before.counts.processed) / seconds,
      failedPerSec: Math.max(0, counts.failed - before.counts.failed) / seconds,
    };
  }

  /** Keeps only the keys in `alive`. */
  sweep(alive: ReadonlySet<object>): void {
    for (const key of this.previous.keys()) if (!alive.has(key)) this.previous.delete(key);
  }
}

/** Every string in `value` (keys too) with each secret replaced by `(hidden)`; the structure stays as is. */
export function redactSecrets<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  const redact = (text: string): string => {
    let result = text;
    for (const secret of secrets) if (result.includes(secret)) result = result.split(secret).join('(hidden)');
    return result;
  };
  const walk = (item: unknown): unknown => {
    if (typeof item === 'string') return redact(item);
    if (Array.isArray(item)) return item.map(walk);
    if (item !== null && typeof item === 'object') {
      return Object.fromEntries(Object.entries(item).map(([key, entry]) => [redact(key), walk(entry)]));
    }
    return item;
  };
  return walk(value) as T;
}

/** The secret strings of the connection options: SASL passwords and tokens, TLS private keys and passphrases. */
export function connectionSecrets(options: { sasl?: unknown; ssl?: unknown }): string[] {
  const secrets: string[] = [];
  const add = (value: unknown): void => {
    if (typeof value === 'string' && value.length > 0) secrets.push(value);
    else if (Buffer.isBuffer(value) && value.length > 0) secrets.push(value.toString('utf8'));
    else if (Array.isArray(value)) value.forEach(add);
    else if (value !== null && typeof value === 'object' && 'pem' in value) {
      add((value as { pem: unknown }).pem);
      add((value as { passphrase?: unknown }).passphrase);
    }
  };
  const sasl = (options.sasl ?? {}) as Record<string, unknown>;
  for (const field of ['password', 'secretAccessKey', 'sessionToken']) add(sasl[field]);
  if (options.ssl !== null && typeof options.ssl === 'object') {
    const ssl = options.ssl as Record<string, unknown>;
    for (const field of ['key', 'passphrase', 'pfx']) add(ssl[field]);
  }
  // A PEM key is also matched line by line: a message may quote part of it.
  return secrets.flatMap((secret) =>
    secret.includes('\n') ? [secret, ...secret.split('\n').filter((line) => line.length >= 16)] : [secret],
  );
}
