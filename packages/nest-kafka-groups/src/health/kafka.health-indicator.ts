import { Injectable } from '@nestjs/common';
import {
  type HealthCheckAttempt,
  type HealthIndicatorResult,
  HealthIndicatorService,
} from '@nestjs/terminus';
import type { ConsumerMember } from '../server/consumer-member.js';
import { KafkaGroupsServer } from '../server/kafka-groups.server.js';
import { KafkaAdminClient } from '../status/kafka-admin.client.js';

/** Default deadline of the broker round trip. */
export const KAFKA_HEALTH_TIMEOUT_MS = 3_000;

/** One group in the `groupsCheck` result. */
export interface KafkaGroupHealth {
  /** Members of the group this process runs. */
  members: number;
  /** Of those, members that joined the group. */
  joined: number;
  /** What keeps the group from being healthy, one entry per member or partition; absent when healthy. */
  problems?: string[];
  /** Stopped by the application (`autoStart: false`, `KafkaGroups.stop`): healthy, nothing to join. */
  stopped?: true;
}

/**
 * Terminus health indicators for the Kafka transport:
 * - `brokerCheck`: the cluster answers a metadata request within a deadline;
 * - `groupsCheck`: every member of every consumer group in this process has joined its group (state from the
 *   consumers' join and crash events: kafkajs's `run()` resolves even when joining failed), none crashed, none
 *   whose group coordinator has not answered it (or taken its commits) for a session timeout, and no
 *   partition is stopped (a message failed for good with dead letters off, or its dead-letter write cannot
 *   succeed until someone acts: topic missing, not authorized, too large even as a stub).
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() {
 *   return this.health.check([() => this.kafka.brokerCheck('kafka-broker'), () => this.kafka.groupsCheck('kafka-groups')]);
 * }
 * ```
 */
@Injectable()
export class KafkaHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly admin: KafkaAdminClient,
    private readonly server: KafkaGroupsServer,
  ) {}

  /** Up when the cluster answers a metadata request within `timeoutMs`; the data names the brokers it lists. */
  brokerCheck<const Key extends string>(
    key: Key,
    timeoutMs = KAFKA_HEALTH_TIMEOUT_MS,
  ): HealthCheckAttempt<Key> {
    return this.health
      .check(key)
      .attempt(async () => {
        const cluster = await this.admin.run('broker health check', timeoutMs, (admin) =>
          admin.describeCluster(),
        );
        return {
          clusterId: cluster.clusterId,
          brokers: cluster.brokers.map(({ host, port }) => `${host}:${port}`),
          controller: cluster.controller,
        };
      })
      .withTimeout(timeoutMs + 250);
  }

  /** Up when every member of every group in this process runs joined, with no stopped partition. */
  groupsCheck<const Key extends string>(key: Key): HealthIndicatorResult<Key> {
    const groups: Record<string, KafkaGroupHealth> = {};
    let healthy = true;
    for (const runner of this.server.groups) {
      if (!runner.running && !runner.closed) {
        groups[runner.groupId] = { members: runner.members.length, joined: 0, stopped: true };
        continue;
      }
      const problems = [
        ...(runner.startProblem ? [`not started: ${runner.startProblem}`] : []),
        ...runner.members.flatMap((member, index) => memberProblems(member, index)),
      ];
      const joined = runner.members.filter((m) => m.state === 'joined').length;
      groups[runner.groupId] = {
        members: runner.members.length,
        joined,
        ...(problems.length > 0 && { problems }),
      };
      if (problems.length > 0) healthy = false;
    }
    const session = this.health.check(key);
    return healthy ? session.up({ groups }) : session.down({ groups });
  }
}

function deniedUntilFetch(name: string, member: ConsumerMember): string {
  return `${name}: ${member.deniedUntilFetch} (joined again; ${member.deniedUntilFetchWaitsFor})`;
}

function memberProblems(member: ConsumerMember, index: number): string[] {
  const name = `member ${index}${member.memberId ? ` (${member.memberId})` : ''}`;
  const problems: string[] = [];
  const reason = member.lastError ? `: ${member.lastError}` : '';
  switch (member.state) {
    case 'joined':
      if (member.coordinatorProblem) problems.push(`${name}: ${member.coordinatorProblem}`);
      if (member.deniedUntilFetch) problems.push(deniedUntilFetch(name, member));
      break;
    case 'rebalancing':
      // A rebalance of a healthy group is brief and normal; one caused by an error (a kafkajs restart) is not.
      if (member.lastError) problems.push(`${name} is recovering from an error${reason}`);
      // Nor is one of a member whose topic denial no fetch has lifted yet.
      else if (member.deniedUntilFetch) problems.push(deniedUntilFetch(name, member));
      break;
    case 'starting':
      problems.push(`${name} has not joined the group yet${reason}`);
      break;
    case 'crashed':
      problems.push(`${name} crashed and is being recreated${reason}`);
      break;
    case 'stopped':
      problems.push(`${name} is stopped${reason}`);
      break;
  }
  for (const [partition, why] of member.stoppedPartitions) {
    problems.push(`${name}: partition ${partition} is stopped: ${why}`);
  }
  return problems;
}
