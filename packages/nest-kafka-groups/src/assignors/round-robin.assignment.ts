import {
  addPartition,
  type Assignment,
  emptyAssignment,
  type MemberSubscription,
  type PartitionCounts,
  subscribedTopics,
} from './member-subscriptions.js';

/**
 * Java's RoundRobinAssignor: all partitions sorted by topic then number, dealt to the members sorted by id in a
 * circle, skipping members that do not subscribe to the partition's topic.
 */
export function roundRobinAssignment(
  subscriptions: MemberSubscription[],
  counts: PartitionCounts,
): Assignment {
  const assignment = emptyAssignment(subscriptions);
  // Every topic here has a subscriber (no members, no topics), so the search for the next one ends.
  let next = 0;
  for (const topic of subscribedTopics(subscriptions)) {
    const partitions = counts.get(topic) ?? 0;
    for (let partition = 0; partition < partitions; partition++) {
      while (!subscriptions[next % subscriptions.length].topics.includes(topic)) next++;
      addPartition(assignment, subscriptions[next % subscriptions.length].memberId, topic, partition);
      next++;
    }
  }
  return assignment;
}
