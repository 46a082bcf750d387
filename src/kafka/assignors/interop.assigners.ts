import type { Assigner, PartitionAssigner } from '../client/kafkajs.js';
import {
  type Assignment,
  decodeSubscriptions,
  encodeAssignment,
  encodeSubscription,
  type MemberSubscription,
  type PartitionCounts,
  subscribedTopics,
} from './member-subscriptions.js';
import { rangeAssignment } from './range.assignment.js';
import { roundRobinAssignment } from './round-robin.assignment.js';

/** The parts of kafkajs's cluster the assigners use (not in its public typings). */
interface AssignerCluster {
  addMultipleTargetTopics(topics: string[]): Promise<void>;
  findTopicPartitionMetadata(topic: string): { partitionId: number }[];
}

type AssignmentStrategy = (subscriptions: MemberSubscription[], counts: PartitionCounts) => Assignment;

/**
 * A kafkajs assigner that works in groups shared with Java and Go clients: it decodes every member's
 * subscription, fetches metadata for topics only other members consume, and returns an entry for every member.
 */
function interopAssigner(name: string, strategy: AssignmentStrategy): PartitionAssigner {
  return ({ cluster }) => {
    const metadata = cluster as unknown as AssignerCluster;
    const assigner: Assigner = {
      name,
      version: 0,
      async assign({ members }) {
        const subscriptions = decodeSubscriptions(members);
        const topics = subscribedTopics(subscriptions);
        await metadata.addMultipleTargetTopics(topics);
        const counts = new Map(topics.map((t) => [t, metadata.findTopicPartitionMetadata(t).length]));
        return encodeAssignment(strategy(subscriptions, counts));
      },
      protocol({ topics }) {
        return { name, metadata: encodeSubscription(topics) };
      },
    };
    return assigner;
  };
}

/** Java's `range` (the Java consumer's default first protocol). */
export const RangeAssigner = interopAssigner('range', rangeAssignment);
/** Java's and sarama's `roundrobin`. */
export const RoundRobinInteropAssigner = interopAssigner('roundrobin', roundRobinAssignment);
/** Under kafkajs's own protocol name, so members of Nest's built-in Kafka transport can share the group. */
export const KafkajsRoundRobinAssigner = interopAssigner('RoundRobinAssigner', roundRobinAssignment);

/** Advertised in this order: the coordinator picks the first protocol every member supports. */
export const INTEROP_ASSIGNERS: PartitionAssigner[] = [
  RangeAssigner,
  RoundRobinInteropAssigner,
  KafkajsRoundRobinAssigner,
];
