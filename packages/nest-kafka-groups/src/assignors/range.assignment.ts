import {
  addPartition,
  type Assignment,
  emptyAssignment,
  type MemberSubscription,
  type PartitionCounts,
  subscribedTopics,
} from './member-subscriptions.js';

/**
 * Java's RangeAssignor: per topic, its subscribers sorted by member id each take a contiguous range; the first
 * `partitions % subscribers` of them take one extra.
 */
export function rangeAssignment(subscriptions: MemberSubscription[], counts: PartitionCounts): Assignment {
  const assignment = emptyAssignment(subscriptions);
  for (const topic of subscribedTopics(subscriptions)) {
    const subscribers = subscriptions.filter((s) => s.topics.includes(topic));
    const partitions = counts.get(topic) ?? 0;
    const perMember = Math.floor(partitions / subscribers.length);
    const extra = partitions % subscribers.length;
    subscribers.forEach(({ memberId }, i) => {
      const start = perMember * i + Math.min(i, extra);
      const length = perMember + (i < extra ? 1 : 0);
      for (let p = start; p < start + length; p++) addPartition(assignment, memberId, topic, p);
    });
  }
  return assignment;
}
