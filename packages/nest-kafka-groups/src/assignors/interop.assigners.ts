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

/** The part of kafkajs's cluster the assigners use (not in its public typings): one metadata request. */
interface AssignerCluster {
  metadata(request: { topics: string[] }): Promise<{
    topicMetadata: { topic: string; partitionMetadata: unknown[] }[];
  }>;
}

type AssignmentStrategy = (subscriptions: MemberSubscription[], counts: PartitionCounts) => Assignment;

/** Metadata errors for a topic that Java's leader answers by skipping the topic ("no metadata is available"). */
const TOPIC_WITHOUT_METADATA = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
]);

function isTopicWithoutMetadata(error: unknown): boolean {
  // kafkajs may wrap the protocol error once (a retrier that gave up).
  for (
    let current = error as { type?: string; originalError?: unknown; cause?: unknown } | undefined, depth = 0;
    current && depth < 3;
    depth++
  ) {
    if (TOPIC_WITHOUT_METADATA.has(current.type ?? '')) return true;
    current = (current.originalError ?? current.cause) as typeof current;
  }
  return false;
}

async function countsOf(cluster: AssignerCluster, topics: string[]): Promise<Map<string, number>> {
  const { topicMetadata } = await cluster.metadata({ topics });
  const counts = new Map(topics.map((t) => [t, 0]));
  for (const { topic, partitionMetadata } of topicMetadata) counts.set(topic, partitionMetadata.length);
  return counts;
}

/**
 * Partition counts of every subscribed topic, from a metadata request of their own. Not through the consumer's
 * target topics (`addMultipleTargetTopics`): those are kept for good, so a topic only another member read, once
 * deleted, failed every later metadata refresh of this member, and its rejoin with it, forever. kafkajs fails
 * the whole request when one topic is unknown (say a Java member also subscribes to a topic not created yet);
 * like Java's leader, such a topic gets 0 partitions here and the others are assigned.
 */
async function partitionCounts(cluster: AssignerCluster, topics: string[]): Promise<Map<string, number>> {
  try {
    return await countsOf(cluster, topics);
  } catch (error) {
    if (!isTopicWithoutMetadata(error)) throw error;
  }
  const counts = new Map<string, number>();
  for (const topic of topics) {
    try {
      counts.set(topic, (await countsOf(cluster, [topic])).get(topic)!);
    } catch (error) {
      if (!isTopicWithoutMetadata(error)) throw error;
      counts.set(topic, 0);
    }
  }
  return counts;
}

/**
 * A kafkajs assigner that works in groups shared with Java and Go clients: it decodes every member's
 * subscription, fetches metadata for topics only other members consume (skipping topics without metadata, as Java
 * does) without adding them to the consumer's own, and returns an entry for every member.
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
