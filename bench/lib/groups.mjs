/** Group state as the broker reports it (admin describeGroups), for the orchestrators. */
import { setTimeout as sleep } from 'node:timers/promises';

/** Partitions in a member's assignment bytes (consumer protocol: int16 version, then topics with int32 arrays). */
export function assignedPartitionCount(buffer) {
  if (!buffer || buffer.length < 6) return 0;
  let assigned = 0;
  let at = 2;
  const topics = buffer.readInt32BE(at);
  at += 4;
  for (let t = 0; t < topics; t++) {
    const nameLength = buffer.readInt16BE(at);
    at += 2 + nameLength;
    const count = buffer.readInt32BE(at);
    at += 4 + 4 * count;
    assigned += count;
  }
  return assigned;
}

/**
 * Waits until the group is Stable with `members` members (any number above 0 when undefined) and at least
 * `partitions` partitions assigned among them; resolves to the time (performance.now()) it saw that state.
 */
export async function waitForStableGroup(
  admin,
  groupId,
  { partitions, members, timeoutMs = 60_000, pollMs = 100 },
) {
  const deadline = Date.now() + timeoutMs;
  let last = 'not described yet';
  while (Date.now() < deadline) {
    const { groups } = await admin.describeGroups([groupId]);
    const group = groups[0];
    const count = group?.members.length ?? 0;
    const assigned = (group?.members ?? []).reduce(
      (n, m) => n + assignedPartitionCount(m.memberAssignment),
      0,
    );
    last = `${group?.state ?? 'unknown'}, ${count} member(s), ${assigned} partition(s) assigned`;
    if (
      group?.state === 'Stable' &&
      (members === undefined ? count > 0 : count === members) &&
      assigned >= partitions
    )
      return performance.now();
    await sleep(pollMs);
  }
  throw new Error(
    `group ${groupId} did not become Stable with ${members ?? 'its'} member(s) and ${partitions} partitions ` +
      `assigned in ${timeoutMs} ms (last seen: ${last})`,
  );
}
