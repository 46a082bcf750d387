import { Injectable } from '@nestjs/common';
import type { Admin } from '../client/kafkajs.js';
import { KafkaGroupsServer } from '../server/kafka-groups.server.js';
import type { GroupRunner } from '../server/group-runner.js';
import { describeGroup } from './describe-group.js';
import { KafkaAdminClient } from './kafka-admin.client.js';
import { memberStatus } from './member-status.js';
import type {
  KafkaGroupMember,
  KafkaGroupOffsets,
  KafkaGroupStatus,
  KafkaLocalGroupStatus,
  KafkaMemberStatus,
  KafkaMessageCounts,
  KafkaPartitionStatus,
} from './kafka-status.types.js';

/** Deadline of the admin calls that fetch one group's offsets. */
const ADMIN_TIMEOUT_MS = 3_000;

/**
 * What every consumer group of this process is doing: its members here (state, assignment, message counts) and,
 * from the broker, the group's state and per partition the committed offset and the lag.
 */
@Injectable()
export class KafkaStatusService {
  /** Fetches in flight, by group and topics: concurrent callers (a dashboard and a scrape) share one. */
  private readonly inFlight = new Map<string, Promise<KafkaGroupOffsets>>();

  constructor(
    private readonly server: KafkaGroupsServer,
    private readonly admin: KafkaAdminClient,
  ) {}

  /**
   * The running groups (empty before the transport started listening).
   * @internal
   */
  get runners(): readonly GroupRunner[] {
    return this.server.groups;
  }

  /** Status of every group; never rejects: a broker that does not answer leaves the broker's fields null. */
  groups(): Promise<KafkaGroupStatus[]> {
    return Promise.all(this.runners.map((runner) => this.groupStatus(runner)));
  }

  /** Status of one group of this process, or undefined if no such group runs here. */
  async group(groupId: string): Promise<KafkaGroupStatus | undefined> {
    const runner = this.runners.find((r) => r.groupId === groupId);
    return runner ? this.groupStatus(runner) : undefined;
  }

  /** Every group of this process with its members here, without asking the broker (cheap enough to poll). */
  localGroups(): KafkaLocalGroupStatus[] {
    return this.runners.map((runner) => this.localGroup(runner));
  }

  /**
   * The members of a group in this process, without asking the broker.
   * @internal
   */
  localMembers(runner: GroupRunner): KafkaMemberStatus[] {
    return runner.members.map(memberStatus);
  }

  /** Committed offsets and lag of a group's topics, fresh from the broker (concurrent calls share one fetch). */
  offsets(groupId: string, topics: readonly string[]): Promise<KafkaGroupOffsets> {
    const key = `${groupId}\u0000${topics.join('\u0000')}`;
    let offsets = this.inFlight.get(key);
    if (!offsets) {
      offsets = this.admin
        .run(`offsets of group "${groupId}"`, ADMIN_TIMEOUT_MS, (admin) =>
          fetchGroupOffsets(admin, groupId, topics),
        )
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, offsets);
    }
    return offsets;
  }

  private localGroup(runner: GroupRunner): KafkaLocalGroupStatus {
    const members = this.localMembers(runner);
    return {
      groupId: runner.groupId,
      topics: runner.topics,
      members,
      counts: sumCounts(members),
      ...(runner.startProblem !== undefined && { startProblem: runner.startProblem }),
    };
  }

  private async groupStatus(runner: GroupRunner): Promise<KafkaGroupStatus> {
    const base = this.localGroup(runner);
    const { members } = base;
    const owners = new Map<string, string>();
    for (const member of members) {
      if (member.memberId === null) continue;
      for (const [topic, partitions] of Object.entries(member.assignment)) {
        for (const partition of partitions) owners.set(`${topic}:${partition}`, member.memberId);
      }
    }
    try {
      const offsets = await this.offsets(runner.groupId, runner.topics);
      const clientId = new Map(
        [...offsets.owners.values()].map((owner) => [owner.memberId, owner.clientId] as const),
      );
      const partitions: KafkaPartitionStatus[] = offsets.partitions.map((p) => {
        const key = `${p.topic}:${p.partition}`;
        const memberId = owners.get(key) ?? offsets.owners.get(key)?.memberId ?? null;
        return { ...p, memberId, clientId: memberId === null ? null : (clientId.get(memberId) ?? null) };
      });
      return {
        ...base,
        state: offsets.state,
        groupProtocol: offsets.groupProtocol,
        groupMembers: offsets.groupMembers,
        partitions,
        lag: partitions.reduce((sum, p) => sum + p.lag, 0),
      };
    } catch (error) {
      return {
        ...base,
        state: null,
        groupProtocol: null,
        groupMembers: null,
        partitions: null,
        lag: null,
        error: error instanceof Error ? error.message : String(error),
      };
    }
  }
}

function sumCounts(members: KafkaMemberStatus[]): KafkaMessageCounts {
  const total = { processed: 0, failed: 0, deadLettered: 0 };
  for (const { counts } of members) {
    total.processed += counts.processed;
    total.failed += counts.failed;
    total.deadLettered += counts.deadLettered;
  }
  return total;
}

/**
 * One describeGroups, one offset fetch for the group and two list-offsets per topic; for a group DescribeGroups calls
 * Dead, one ConsumerGroupDescribe more (and, on a broker without it, one listGroups).
 */
async function fetchGroupOffsets(
  admin: Admin,
  groupId: string,
  topics: readonly string[],
): Promise<KafkaGroupOffsets> {
  const [described, committed, ends] = await Promise.all([
    describeGroup(admin, groupId),
    admin.fetchOffsets({ groupId, topics: [...topics] }),
    Promise.all(topics.map(async (topic) => ({ topic, offsets: await admin.fetchTopicOffsets(topic) }))),
  ]);
  const committedOf = new Map<string, number>();
  for (const { topic, partitions } of committed) {
    for (const { partition, offset } of partitions) committedOf.set(`${topic}:${partition}`, Number(offset));
  }
  const partitions = ends.flatMap(({ topic, offsets }) =>
    offsets.map(({ partition, high, low }) => {
      const end = Number(high);
      const start = Number(low);
      const offset = committedOf.get(`${topic}:${partition}`) ?? -1;
      const committedOffset = offset >= 0 ? offset : null;
      const lag = committedOffset === null ? end - start : Math.max(0, end - committedOffset);
      return { topic, partition, committedOffset, logEndOffset: end, lag };
    }),
  );
  partitions.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  return { ...described, partitions, owners: partitionOwners(described.members) };
}

/** Who holds which partition, from the assignments in the group description (the coordinator's view). */
function partitionOwners(members: KafkaGroupMember[]): KafkaGroupOffsets['owners'] {
  const owners: KafkaGroupOffsets['owners'] = new Map();
  for (const { memberId, clientId, assignment } of members) {
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) owners.set(`${topic}:${partition}`, { memberId, clientId });
    }
  }
  return owners;
}
