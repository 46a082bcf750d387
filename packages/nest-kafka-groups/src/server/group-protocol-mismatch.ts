import type { Kafka, PartitionAssigner } from '../client/kafkajs.js';
import {
  KafkaGroupProtocolError,
  type KafkaGroupProtocolInUse,
} from '../errors/kafka-group-protocol.error.js';

/** How long the description of a group that refused this member may take; the message goes out without it after. */
const DESCRIBE_TIMEOUT_MS = 5_000;

/** The broker refused a JoinGroup because the group's members share none of its protocols (in the error's chain). */
export function isInconsistentGroupProtocol(error: unknown): boolean {
  let current = error as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined;
  for (let depth = 0; current && typeof current === 'object' && depth < 5; depth++) {
    if (current.type === 'INCONSISTENT_GROUP_PROTOCOL') return true;
    current = (current.originalError ?? current.cause) as typeof current;
  }
  return false;
}

/**
 * The protocol names the assigners advertise. Built as kafkajs builds them, without a cluster: building one only
 * names it, and it is never asked to assign.
 */
export function advertisedProtocols(
  kafka: Kafka,
  groupId: string,
  assigners: readonly PartitionAssigner[],
): string[] {
  const logger = kafka.logger();
  return assigners.map(
    (createAssigner) => createAssigner({ cluster: undefined as never, groupId, logger }).name,
  );
}

/**
 * The error that says why the member cannot join: describes the group (bounded, best effort) to name the protocol
 * its members settled on and who they are.
 */
export async function groupProtocolError(
  kafka: Kafka,
  groupId: string,
  assigners: readonly PartitionAssigner[],
  cause: unknown,
): Promise<KafkaGroupProtocolError> {
  const advertised = advertisedProtocols(kafka, groupId, assigners);
  return new KafkaGroupProtocolError(groupId, advertised, await describe(kafka, groupId), cause);
}

async function describe(kafka: Kafka, groupId: string): Promise<KafkaGroupProtocolInUse | undefined> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>(
    (resolve) => (timer = setTimeout(() => resolve(undefined), DESCRIBE_TIMEOUT_MS)),
  );
  const described = (async () => {
    await admin.connect();
    const { groups } = await admin.describeGroups([groupId]);
    const group = groups[0];
    return group
      ? { protocol: group.protocol, clientIds: [...new Set(group.members.map((m) => m.clientId))] }
      : undefined;
  })().catch(() => undefined);
  try {
    return await Promise.race([described, timedOut]);
  } finally {
    clearTimeout(timer);
    void described.finally(() => admin.disconnect().catch(() => undefined));
  }
}
