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

/** Metadata errors for a topic that Java's leader answers by skipping the topic ("no metadata is available"). */
const TOPIC_WITHOUT_METADATA = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
]);

function isTopicWithoutMetadata(error: unknown): boolean {
  return TOPIC_WITHOUT_METADATA.has((error as { type?: string } | undefined)?.type ?? '');
}

/**
 * Partition counts of every subscribed topic. kafkajs fails the whole metadata request when one topic is unknown
 * (say a Java member also subscribes to a topic not created yet), which would fail every SyncGroup of this leader
 * and keep the group rebalancing for good; so, like Java's leader, a topic without metadata gets 0 partitions here
 * and the others are assigned.
 */
async function partitionCounts(metadata: AssignerCluster, topics: string[]): Promise<Map<string, number>> {
  try {
    await metadata.addMultipleTargetTopics(topics);
  } catch (error) {
    if (!isTopicWithoutMetadata(error)) throw error;
    // kafkajs restored its target topics; add them one at a time, leaving out the ones without metadata.
    for (const topic of topics) {
      await metadata.addMultipleTargetTopics([topic]).catch((topicError: unknown) => {
        if (!isTopicWithoutMetadata(topicError)) throw topicError;
      });
    }
  }
  return new Map(topics.map((t) => [t, metadata.findTopicPartitionMetadata(t).length]));
}

/**
 * A kafkajs assigner that works in groups shared with Java and Go clients: it decodes every member's
 * subscription, fetches metadata for topics only other members consume (skipping topics without metadata, as Java
 * does), and returns an entry for every member.
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
        const counts = await partitionCounts(metadata, topics);
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
