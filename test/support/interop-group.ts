import { expect } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import kafkajs from 'kafkajs';
import {
  KafkaGroupContext,
  type KafkaGroupsServer,
  KafkaHandler,
  KafkaModule,
  type KafkaModuleOptions,
} from 'nest-kafka-groups';
import { KafkaTestClient, waitFor } from 'nest-kafka-groups/testing';
import type { ClientProcess } from './foreign-client.js';
import { startTestApp } from './nest-test-app.js';

const { AssignerProtocol } = kafkajs;

/** A member of a consumer group in a child process: a Go, librdkafka or Java client. */
export type GroupClient = ClientProcess<{ partition: number; value: string | null }>;

/** What the Nest handler of an interop group saw of one record. */
export interface InteropDelivery {
  group: string;
  partition: number;
  offset: string;
  key: string | undefined;
  payload: unknown;
  headers: Record<string, string | string[]>;
}

/** Every record the Nest members of the spec file handled, in order; cleared after each test. */
export const deliveries: InteropDelivery[] = [];

@Controller()
class InteropRecordingController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: Record<string, unknown> | null, @Ctx() ctx: KafkaGroupContext) {
    deliveries.push({
      group: ctx.groupId,
      partition: ctx.partition,
      offset: ctx.offset,
      key: ctx.key,
      payload,
      headers: { ...ctx.headers },
    });
  }
}

function groupModule(groupId: string, topic: string, concurrency: number) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { TOPIC: topic }, concurrency })],
    controllers: [InteropRecordingController],
  })
  class InteropGroupModule {}
  return InteropGroupModule;
}

const seqOf = (value: string | null) => (JSON.parse(value!) as { seq: number }).seq;

/**
 * Nest members and foreign clients (Go, librdkafka, Java) in one consumer group: starts and tracks both, checks the
 * group the coordinator settled on, that every message is processed once across them, and that a client leaves
 * cleanly. `cleanUp()` after each test, `close()` after all.
 */
export class InteropGroupFixture {
  readonly kafka = new KafkaTestClient();
  private readonly apps: INestApplication[] = [];
  /** Each started client with the client id its member id starts with. */
  private readonly clients = new Map<GroupClient, string>();

  /** Tracks a started client so that cleanUp() stops it; `clientId` finds its member in the group. */
  track<C extends GroupClient>(client: C, clientId: string): C {
    this.clients.set(client, clientId);
    return client;
  }

  async startNest(
    groupId: string,
    topic: string,
    concurrency = 1,
    root: Partial<KafkaModuleOptions> = {},
  ): Promise<KafkaGroupsServer> {
    const { app, server } = await startTestApp([groupModule(groupId, topic, concurrency)], root);
    this.apps.push(app);
    return server;
  }

  /** Starts a Nest app with `concurrency` members and waits until they formed the group and each holds partitions. */
  async startNestLeading(groupId: string, topic: string, concurrency: number): Promise<KafkaGroupsServer> {
    const server = await this.startNest(groupId, topic, concurrency);
    await this.kafka.waitForStableGroup(groupId, concurrency);
    await waitFor(`all ${concurrency} Nest members assigned`, 20_000, () =>
      server.groups[0].members.every((m) => (m.assignment[topic] ?? []).length > 0),
    );
    return server;
  }

  /**
   * Starts a Nest member in a group whose members (client id `clientId`) use only cooperative-sticky, and waits
   * until it is refused with the error naming the group, both sides' protocols and those members. Returns it.
   */
  async startRefusedNest(groupId: string, topic: string, clientId: string) {
    const server = await this.startNest(groupId, topic, 1, {
      restartBackoff: { initialDelayMs: 200, maxDelayMs: 1_000 },
    });
    const member = server.groups[0].members[0];
    await waitFor('the Nest member refused, with the reason', 30_000, () =>
      member.lastError?.startsWith('Cannot join consumer group'),
    );
    expect(member.lastError).toContain(
      `Cannot join consumer group "${groupId}" with protocols range, roundrobin, RoundRobinAssigner: ` +
        `its members (${clientId}) use assignment protocol "cooperative-sticky"`,
    );
    return member;
  }

  /** The sequence numbers the Nest members of `groupId` handled, in handling order. */
  nestSeqs(groupId: string): number[] {
    return deliveries.filter((d) => d.group === groupId).map((d) => (d.payload as { seq: number }).seq);
  }

  /**
   * Waits until the client, alone in the group, holds all `partitions` partitions and the group is Stable; checks
   * it ran the assignment. Returns how many assignments it ran so far.
   */
  async leadsAlone(client: GroupClient, groupId: string, partitions: number, what: string): Promise<number> {
    const all = JSON.stringify(Array.from({ length: partitions }, (_, p) => p));
    await client.waitUntil(
      `first assignment (alone: ${what})`,
      60_000,
      () => JSON.stringify(client.assignment) === all,
    );
    await this.kafka.waitForStableGroup(groupId, 1);
    const leaderRunsAlone = client.leaderRuns.length;
    expect(leaderRunsAlone).toBeGreaterThanOrEqual(1);
    return leaderRunsAlone;
  }

  /** Waits until the client, after its first `since` leader runs, assigned a generation of `members` members. */
  async ledAgain(client: GroupClient, since: number, members: number): Promise<void> {
    await client.waitUntil(`leader assignment for ${members} members`, 10_000, () =>
      client.leaderRuns.slice(since).some((r) => r.members === members),
    );
  }

  /**
   * Waits for the group Stable with `members` members and each client holding the assignment the coordinator
   * handed it; checks the protocol and that the assignments cover every partition once. Returns the protocol,
   * every member's partitions by member id and each client's partitions.
   */
  async settledGroup(
    groupId: string,
    topic: string,
    partitions: number,
    members: number,
    clients: GroupClient[],
  ) {
    const group = await this.kafka.waitForStableGroup(groupId, members, 60_000);
    expect(group.protocolType).toBe('consumer');
    expect(['range', 'roundrobin']).toContain(group.protocol);
    const assigned = new Map(
      group.members.map((m) => {
        const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
        return [m.memberId, decoded?.assignment[topic] ?? []] as const;
      }),
    );
    expect([...assigned.values()].flat().sort((a, b) => a - b)).toEqual(
      Array.from({ length: partitions }, (_, p) => p),
    );
    const clientPartitions: number[][] = [];
    for (const client of clients) {
      const clientId = this.clients.get(client);
      const member = group.members.find((m) => m.clientId === clientId);
      expect(member).toMatchObject({ clientId, memberId: expect.any(String) });
      const expected = [...assigned.get(member!.memberId)!].sort((a, b) => a - b);
      await client.waitUntil(
        `assignment ${JSON.stringify(expected)} as member ${member!.memberId}`,
        20_000,
        () =>
          client.memberId === member!.memberId &&
          JSON.stringify(client.assignment) === JSON.stringify(expected),
      );
      clientPartitions.push(expected);
    }
    return { protocol: group.protocol, assigned, clientPartitions };
  }

  /** Waits until each Nest member holds what the coordinator assigned it. */
  async nestMembersHold(server: KafkaGroupsServer, topic: string, assigned: Map<string, number[]>) {
    await waitFor('every Nest member holds its assignment', 20_000, () =>
      server.groups[0].members.every(
        (m) => JSON.stringify(m.assignment[topic] ?? []) === JSON.stringify(assigned.get(m.memberId!)),
      ),
    );
  }

  /**
   * Produces `count` messages; the Nest members and the clients together process each exactly once and commit the
   * end. Returns how many the Nest members and each client processed.
   */
  async produceAndCheckOnce(groupId: string, topic: string, count: number, clients: GroupClient[]) {
    await this.kafka.produceKeyed(topic, count, (i) => `k${i % 13}`);
    await this.kafka.waitForCommittedToEnd(groupId, topic, 60_000);
    const clientSeqs = () => clients.flatMap((client) => client.records.map((r) => seqOf(r.value)));
    // A client reports a record before it commits it; the line may still be in the pipe.
    await waitFor(
      `${count} messages processed`,
      10_000,
      () => this.nestSeqs(groupId).length + clientSeqs().length >= count,
    );
    expect([...this.nestSeqs(groupId), ...clientSeqs()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: count }, (_, i) => i),
    );
    const offsets = await this.kafka.offsets(groupId, topic);
    expect(offsets.every((o) => o.committed === o.end)).toBe(true);
    for (const client of clients) expect(client.errors).toEqual([]);
    return { nest: this.nestSeqs(groupId).length, clients: clients.map((client) => client.records.length) };
  }

  /** Stops a client the clean way (SIGTERM: commit, leave the group) and checks it left without errors. */
  async stopCleanly(client: GroupClient) {
    await client.stop(15_000);
    expect(client.exitReason).toBe('signal');
    expect(client.exitCode).toBe(0);
    expect(client.errors).toEqual([]);
  }

  /** Never leaves a client behind: SIGTERM (it commits and leaves the group), SIGKILL after the timeout. */
  async cleanUp(): Promise<void> {
    const clients = [...this.clients.keys()];
    this.clients.clear();
    await Promise.all(clients.map((client) => client.stop(15_000)));
    while (this.apps.length > 0) await this.apps.pop()!.close();
    deliveries.length = 0;
  }

  async close(): Promise<void> {
    await this.kafka.closeAll();
  }
}
