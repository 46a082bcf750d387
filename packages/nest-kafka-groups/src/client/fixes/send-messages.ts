import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';
import { PartitionOrder } from './partition-order.js';

interface PartitionMetadata {
  partitionId: number;
  leader: number;
}

type Partitioner = (args: {
  topic: string;
  partitionMetadata: PartitionMetadata[];
  message: unknown;
}) => number;

export interface TopicPlan<M> {
  readonly topic: string;
  /** Messages per partition, in send order. */
  readonly messagesPerPartition: Map<number, M[]>;
}

/**
 * Picks each message's partition, once per send(): the retries of that send() reuse the result. Calling the
 * partitioner again on a retry moves unkeyed messages (round-robin) and, after partitions were added, keyed ones
 * to partitions that may already be acknowledged, which skips them.
 */
export function planPartitions<M>(
  topic: string,
  partitionMetadata: PartitionMetadata[],
  messages: readonly M[],
  partitioner: Partitioner,
): TopicPlan<M> {
  const messagesPerPartition = new Map<number, M[]>();
  for (const message of messages) {
    const partition = Number(partitioner({ topic, partitionMetadata, message }));
    const list = messagesPerPartition.get(partition);
    if (list) list.push(message);
    else messagesPerPartition.set(partition, [message]);
  }
  return { topic, messagesPerPartition };
}

/** The partitions of a plan not acknowledged yet. */
export function pendingPartitions(
  plan: TopicPlan<unknown>,
  acknowledged: ReadonlyMap<string, unknown>,
): number[] {
  return [...plan.messagesPerPartition.keys()].filter(
    (partition) => !acknowledged.has(ackKey(plan.topic, partition)),
  );
}

/** The partition keys of plans. */
function plannedKeys(plans: readonly TopicPlan<unknown>[]): string[] {
  return plans.flatMap((plan) =>
    [...plan.messagesPerPartition.keys()].map((partition) => ackKey(plan.topic, partition)),
  );
}

/**
 * Names the partitions of a failed send() that the broker did not acknowledge and its error does not name already
 * (the last error of a retry loop may come from a metadata request, which names no topic, or from one of several
 * refused partitions). The topics when the send() failed before it picked partitions.
 */
export function withUnacknowledged(
  message: string,
  topics: readonly string[],
  plans: readonly TopicPlan<unknown>[] | undefined,
  acknowledged: ReadonlyMap<string, unknown>,
): string {
  const names = plans
    ? plans.flatMap((plan) =>
        pendingPartitions(plan, acknowledged).map(
          (partition) => `topic "${plan.topic}", partition ${partition}`,
        ),
      )
    : topics.map((topic) => `topic "${topic}"`);
  const unnamed = names.filter((name) => !mentions(message, name));
  if (unnamed.length === 0) return message;
  const also = unnamed.length < names.length ? 'also ' : '';
  return `${message} (${also}not acknowledged: ${unnamed.join('; ')})`;
}

/** Whether `message` contains `name` not followed by a digit ("partition 1" is not named by "partition 10"). */
function mentions(message: string, name: string): boolean {
  for (let at = message.indexOf(name); at !== -1; at = message.indexOf(name, at + 1)) {
    const next = message.charCodeAt(at + name.length);
    if (!(next >= 48 && next <= 57)) return true;
  }
  return false;
}

export function ackKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/**
 * Errors a broker answers a Produce with before it appends the batch: after these the batch is certainly not in
 * the log. Any other failure (no answer: connection lost, request timed out; or an answer such as
 * REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND, which come after the append) leaves it unknown.
 */
const REFUSED_BEFORE_APPEND = new Set([
  'CORRUPT_MESSAGE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'MESSAGE_TOO_LARGE',
  'INVALID_TOPIC_EXCEPTION',
  'RECORD_LIST_TOO_LARGE',
  'NOT_ENOUGH_REPLICAS',
  'INVALID_REQUIRED_ACKS',
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'INVALID_TIMESTAMP',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'INVALID_PRODUCER_EPOCH',
  'UNKNOWN_PRODUCER_ID',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'INVALID_RECORD',
]);

/**
 * Whether a failed Produce request certainly did not append its batch: it never left the client (kafkajs checks
 * the connection before it writes a request), or the broker refused it before appending. An error thrown for a whole
 * response names only its first failed partition, so a request with several partitions is certain only when it never
 * left; a partition's own refusal in the answer (readProduceAnswer) is checked as a request of one.
 */
export function certainlyNotAppended(error: unknown, partitionsInRequest: number): boolean {
  const { name, message, type } = (error ?? {}) as { name?: unknown; message?: unknown; type?: unknown };
  if (name === 'KafkaJSConnectionError' && message === 'Not connected') return true;
  return partitionsInRequest === 1 && typeof type === 'string' && REFUSED_BEFORE_APPEND.has(type);
}

/** One partition's entry of a Produce answer (kafkajs's decoded response, every version alike). */
export interface PartitionAnswer {
  readonly topicName: string;
  readonly partition: number;
  readonly errorCode: number;
}

export interface ProduceAnswer<E> {
  /** Appended, or already in the log (DUPLICATE_SEQUENCE_NUMBER), in the answer's order. */
  readonly accepted: PartitionAnswer[];
  readonly refused: Array<{ readonly topic: string; readonly partition: number; readonly error: E }>;
}

const DUPLICATE_SEQUENCE_NUMBER = 46;

/**
 * Splits a Produce answer by partition, as Java's Sender completes each batch of a response on its own: a partition
 * the broker appended is answered whatever its neighbours' errors. DUPLICATE_SEQUENCE_NUMBER counts as written, as
 * in Java: the broker holds that batch already, it only no longer remembers its offset.
 */
export function readProduceAnswer<E>(
  response: {
    topics: Array<{ topicName: string; partitions: Array<{ partition: number; errorCode: number }> }>;
  },
  errorOf: (errorCode: number, topic: string, partition: number) => E,
): ProduceAnswer<E> {
  const accepted: PartitionAnswer[] = [];
  const refused: Array<{ topic: string; partition: number; error: E }> = [];
  for (const { topicName, partitions } of response.topics) {
    for (const answer of partitions) {
      const partition = Number(answer.partition);
      if (answer.errorCode === 0 || answer.errorCode === DUPLICATE_SEQUENCE_NUMBER)
        accepted.push({ topicName, ...answer, partition });
      else
        refused.push({ topic: topicName, partition, error: errorOf(answer.errorCode, topicName, partition) });
    }
  }
  return { accepted, refused };
}

/**
 * The error a send() fails or retries with for a partition's refusal: the first one not retriable (the send() gives
 * up on it), else the first one.
 */
export function decisiveRefusal<E extends { retriable?: boolean }>(refused: ReadonlyArray<{ error: E }>): E {
  return (refused.find(({ error }) => error.retriable === false) ?? refused[0]).error;
}

/** Broker answers after which a producer id's sequence on the partition no longer matches the broker's. */
const SEQUENCE_LOST = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID']);

const isSequenceLost = (error: unknown): boolean =>
  SEQUENCE_LOST.has((error as { type?: unknown } | undefined)?.type as string);

/**
 * Per idempotent producer (keyed by its eosManager): whether its producer id must be replaced before its next batch
 * goes out, and the replacement under way. Shared by every send() of the producer, so concurrent callers replace it
 * once.
 */
interface ProducerIdRenewal {
  needed: boolean;
  renewing: Promise<void> | undefined;
  /** Requests between their sequence numbers and their answer: the id must not change under them. */
  active: number;
  idle: Array<() => void>;
}

const renewals = new WeakMap<object, ProducerIdRenewal>();

function renewalOf(eosManager: object): ProducerIdRenewal {
  let renewal = renewals.get(eosManager);
  if (!renewal) {
    renewal = { needed: false, renewing: undefined, active: 0, idle: [] };
    renewals.set(eosManager, renewal);
  }
  return renewal;
}

/** Per idempotent producer (keyed by its eosManager): the order its send() calls send batches to each partition. */
const orders = new WeakMap<object, PartitionOrder<object>>();

function orderOf(eosManager: object): PartitionOrder<object> {
  let order = orders.get(eosManager);
  if (!order) {
    order = new PartitionOrder();
    orders.set(eosManager, order);
  }
  return order;
}

/** The sequence numbers a send() gave one partition's batch, under one producer id and epoch. */
interface AssignedSequence {
  producerId: unknown;
  producerEpoch: unknown;
  first: number;
}

/**
 * Replaces kafkajs 2.2.4's producer/sendMessages.js. Upstream keeps the responses per broker across retries and
 * re-partitions on each attempt: a partition whose leader moved to a broker that had already answered is never
 * sent again (kafkajs#1303) and unkeyed messages land on partitions already acknowledged; send() resolves either
 * way. Here partitions are picked once, acknowledgements are kept per partition, each retry sends exactly the
 * partitions not acknowledged yet to their current leaders with the same messages. A retry starts once every request
 * of the previous attempt has settled, and checks again after taking the broker lock, so a request that was still
 * in flight is not sent twice.
 *
 * Sequence numbers (idempotent producer): upstream takes a failed request's numbers back, whatever the failure. When
 * the broker had appended the batch and only its answer was lost, the next batch of the same size to that partition
 * (another send(), or the same one's retry after another send took the numbers) goes out with the same numbers, and
 * the broker acknowledges it as a duplicate of the appended batch without writing it. Here a partition's numbers are
 * given once per send() and reused by its retries (the broker drops the retry of an appended batch); they are taken
 * back only when the batch is certainly not in the log and no later batch took numbers after them. A batch whose
 * fate stays unknown keeps its numbers: if it was not appended, the next batch is refused with
 * OUT_OF_ORDER_SEQUENCE_NUMBER instead of being acknowledged unwritten.
 *
 * A non-transactional idempotent producer then takes a new producer id (as the Java client resets its producer id
 * for an unresolved sequence), so its later batches are not refused for good: when a send() gives up with a
 * partition's numbers kept, or the broker refuses a batch OUT_OF_ORDER_SEQUENCE_NUMBER / UNKNOWN_PRODUCER_ID, the
 * next batch waits until the requests under the old id have settled and InitProducerId answered (every sequence back
 * to 0); a refused send() retries under the new id. A batch of unknown fate sent again under the new id may be
 * written twice (at-least-once). A transactional producer is left to its transaction's abort.
 *
 * Order per partition (idempotent producer): the send() calls with a batch for a partition send it one at a time,
 * in the order they planned it (PartitionOrder), each until its batch there is acknowledged or its send() settles.
 * A batch whose answer was lost is thus retried before any later batch of its partition takes numbers, as the Java
 * client does: otherwise 5 later batches could go out while the retry waits, and the broker, which deduplicates
 * against a producer's last 5 batches per partition, would refuse the retry out of order. kafkajs already sends one
 * Produce at a time per broker for an idempotent producer (eosManager's broker lock), so this adds no wait while
 * answers arrive. A request of a settled send() still waiting sends nothing.
 *
 * A Produce answer is read partition by partition (produce-response.ts keeps each partition's error in it), as Java's
 * Sender completes each batch of a response: a partition the broker appended is acknowledged and leaves its queue at
 * once, though another partition of the same request was refused; only the refused ones are sent again, with their
 * numbers, or fail the send() with an error naming their topic and partition. Upstream fails the whole request on
 * the first partition error, so the appended partitions were sent again (written twice without idempotence) and,
 * with the queues, held every later batch of theirs until the refused partition recovered or the retries ran out.
 */
export const sendMessagesFix: CarriedFix = {
  module: 'src/producer/sendMessages.js',
  sha256: '8a120e6993955e040a13014cccebd79b8d41e7355d6eda1065fa83fea2fbbcdb',
  create: (require: KafkajsRequire) => {
    const { KafkaJSMetadataNotLoaded } = require('../errors');
    const { staleMetadata } = require('../protocol/error');
    const { KafkaJSError, KafkaJSProtocolError } = require('../errors');
    const { createErrorFromCode } = require('../protocol/error');
    const partitionError = (errorCode: number, topic: string, partition: number) => {
      const { message, type, code, retriable } = createErrorFromCode(errorCode);
      const error = new KafkaJSProtocolError({
        message: `${message} (topic "${topic}", partition ${partition})`,
        type,
        code,
        retriable,
      });
      return Object.assign(error, { topic, partition });
    };
    return createSendMessages({ KafkaJSMetadataNotLoaded, KafkaJSError, staleMetadata, partitionError });
  },
};

interface Internals {
  KafkaJSMetadataNotLoaded: new (message: string) => Error;
  KafkaJSError: new (e: Error, options: { retriable: boolean; cause: unknown }) => Error;
  staleMetadata: (error: unknown) => boolean;
  /** A partition's refusal as a kafkajs protocol error naming the topic and partition. */
  partitionError: (errorCode: number, topic: string, partition: number) => Error & { retriable?: boolean };
}

export function createSendMessages({
  KafkaJSMetadataNotLoaded,
  KafkaJSError,
  staleMetadata,
  partitionError,
}: Internals) {
  return ({ logger, cluster, partitioner, eosManager, retrier }: any) =>
    async ({ acks, timeout, compression, topicMessages }: any) => {
      /** Per partition: its produce response (null with acks 0). */
      const acknowledged = new Map<string, any>();
      /** Per partition: the sequence numbers its batch went out with, reused by every retry of this send(). */
      const sequences = new Map<string, AssignedSequence>();
      let plans: TopicPlan<unknown>[] | undefined;
      const inFlight = new Set<Promise<void>>();
      const renewal = renewalOf(eosManager);
      const order = orderOf(eosManager);
      /** This send()'s place in the queues of its partitions (idempotent producer: its batches carry numbers). */
      const turn = {};
      let queued = false;
      /** Set once this send() resolved or failed: a request of its last attempt still waiting sends nothing. */
      let settled = false;
      const renewable = (): boolean => !eosManager.isTransactional() && eosManager.isInitialized();

      const renewProducerId = async (): Promise<void> => {
        try {
          while (renewal.active > 0) await new Promise<void>((resolve) => renewal.idle.push(resolve));
          const previous = eosManager.getProducerId();
          await eosManager.initProducerId();
          renewal.needed = false;
          logger.warn(
            'Idempotent producer took a new producer id: a batch of unknown fate left a sequence gap',
            {
              previousProducerId: previous,
              producerId: eosManager.getProducerId(),
            },
          );
        } finally {
          renewal.renewing = undefined;
        }
      };

      /** Waits for a pending producer id replacement (starting it if none is under way), then counts the request. */
      const enter = async (): Promise<void> => {
        while (renewal.needed || renewal.renewing) {
          renewal.renewing ??= renewProducerId();
          await renewal.renewing;
        }
        renewal.active++;
      };

      const leave = (): void => {
        renewal.active--;
        if (renewal.active === 0) for (const resolve of renewal.idle.splice(0)) resolve();
      };

      /** Whether a partition of this send() was given numbers under the current id and may be in the log. */
      const keptUnresolved = (): boolean =>
        [...sequences].some(
          ([key, assigned]) =>
            !acknowledged.has(key) &&
            assigned.producerId === eosManager.getProducerId() &&
            assigned.producerEpoch === eosManager.getProducerEpoch(),
        );

      const planAll = (): TopicPlan<unknown>[] =>
        topicMessages.map(({ topic, messages }: { topic: string; messages: unknown[] }) => {
          const partitionMetadata = cluster.findTopicPartitionMetadata(topic);
          if (partitionMetadata.length === 0) {
            logger.debug('Producing to topic without metadata', {
              topic,
              targetTopics: Array.from(cluster.targetTopics),
            });
            throw new KafkaJSMetadataNotLoaded('Producing to topic without metadata');
          }
          return planPartitions(topic, partitionMetadata, messages, partitioner);
        });

      /**
       * Gives a batch certainly not in the log its numbers back, when they are still the partition's last ones under
       * the current id (no later batch took numbers after them).
       */
      const takeBack = (topic: string, entry: { partition: number; messages: unknown[] }): void => {
        const key = ackKey(topic, entry.partition);
        const assigned = sequences.get(key);
        if (
          assigned &&
          assigned.producerId === eosManager.getProducerId() &&
          assigned.producerEpoch === eosManager.getProducerEpoch() &&
          eosManager.getSequence(topic, entry.partition) === assigned.first + entry.messages.length
        ) {
          eosManager.updateSequence(topic, entry.partition, -entry.messages.length);
          sequences.delete(key);
        }
      };

      /** After the broker lost this id's numbers the batch goes out again under a new id: the error turns retriable. */
      const renewedOnLostSequence = (e: unknown): unknown => {
        if (!renewable() || !isSequenceLost(e)) return e;
        renewal.needed = true;
        return new KafkaJSError(e as Error, { retriable: true, cause: e });
      };

      const sendToBroker = async (
        broker: any,
        planned: Array<{ plan: TopicPlan<unknown>; partitions: number[] }>,
      ) => {
        if (queued) {
          const turnComes = order.whenFirst(
            turn,
            planned.flatMap(({ plan, partitions }) =>
              partitions.map((partition) => ackKey(plan.topic, partition)),
            ),
          );
          if (turnComes && !(await turnComes)) return;
        }
        await enter();
        try {
          await eosManager.acquireBrokerLock(broker);
        } catch (e) {
          leave();
          throw e;
        }
        try {
          // Checked again under the lock: a request of an earlier attempt may have been acknowledged meanwhile.
          const topicData = planned
            .map(({ plan, partitions }) => ({
              topic: plan.topic,
              partitions: partitions
                .filter((partition) => !acknowledged.has(ackKey(plan.topic, partition)))
                .map((partition) => ({
                  partition,
                  messages: plan.messagesPerPartition.get(partition) as any[],
                })),
            }))
            .filter(({ partitions }) => partitions.length > 0);
          if (topicData.length === 0 || settled) return;

          if (eosManager.isTransactional()) {
            await eosManager.addPartitionsToTransaction(topicData);
          }
          const producerId = eosManager.getProducerId();
          const producerEpoch = eosManager.getProducerEpoch();
          for (const { topic, partitions } of topicData) {
            for (const entry of partitions as any[]) {
              const key = ackKey(topic, entry.partition);
              const kept = sequences.get(key);
              if (kept && kept.producerId === producerId && kept.producerEpoch === producerEpoch) {
                entry.firstSequence = kept.first;
                continue;
              }
              entry.firstSequence = eosManager.getSequence(topic, entry.partition);
              eosManager.updateSequence(topic, entry.partition, entry.messages.length);
              sequences.set(key, { producerId, producerEpoch, first: entry.firstSequence });
            }
          }

          let response;
          try {
            response = await broker.produce({
              transactionalId: eosManager.isTransactional() ? eosManager.getTransactionalId() : undefined,
              producerId: eosManager.getProducerId(),
              producerEpoch: eosManager.getProducerEpoch(),
              acks,
              timeout,
              compression,
              topicData,
            });
          } catch (e) {
            const requestPartitions = topicData.reduce((sum, { partitions }) => sum + partitions.length, 0);
            if (certainlyNotAppended(e, requestPartitions)) {
              for (const { topic, partitions } of topicData) {
                for (const entry of partitions as any[]) takeBack(topic, entry);
              }
            }
            throw renewedOnLostSequence(e);
          }

          if (acks === 0) {
            for (const { topic, partitions } of topicData) {
              for (const { partition } of partitions) acknowledged.set(ackKey(topic, partition), null);
            }
          } else {
            // Each partition on its own: an appended one is answered (its turn given up at once) whatever the
            // others' errors; a refused one alone is retried, or fails the send() with its own error.
            const { accepted, refused } = readProduceAnswer(response, partitionError);
            for (const answer of accepted) {
              const key = ackKey(answer.topicName, answer.partition);
              acknowledged.set(key, answer);
              if (queued) order.leave(turn, key);
            }
            if (refused.length > 0) {
              for (const { topic, partition, error } of refused) {
                if (!certainlyNotAppended(error, 1)) continue;
                const entry = topicData
                  .find((data) => data.topic === topic)
                  ?.partitions.find((data: any) => data.partition === partition);
                if (entry) takeBack(topic, entry);
              }
              const lost = refused.find(({ error }) => isSequenceLost(error));
              throw renewedOnLostSequence(lost ? lost.error : decisiveRefusal(refused));
            }
          }
        } finally {
          try {
            await eosManager.releaseBrokerLock(broker);
          } finally {
            leave();
          }
        }
      };

      const createProducerRequests = async (): Promise<Promise<void>[]> => {
        // A request of the previous attempt may still be out (Promise.all rejected on another broker's failure):
        // wait for it, so its partitions are not sent to a new leader while the old one may still append them.
        await Promise.allSettled(inFlight);
        await cluster.refreshMetadataIfNecessary();
        if (!plans) {
          plans = planAll();
          if (eosManager.isInitialized()) {
            order.join(turn, plannedKeys(plans));
            queued = true;
          }
        }

        const perBroker = new Map<any, Array<{ plan: TopicPlan<unknown>; partitions: number[] }>>();
        for (const plan of plans) {
          const partitions = pendingPartitions(plan, acknowledged);
          if (partitions.length === 0) continue;
          const partitionsPerLeader: Record<string, number[]> = cluster.findLeaderForPartitions(
            plan.topic,
            partitions,
          );
          const led = new Set(Object.values(partitionsPerLeader).flat());
          if (partitions.some((partition) => !led.has(partition))) {
            // kafkajs skips a partition its metadata does not list; sending the rest would resolve without it.
            const missing = partitions.filter((partition) => !led.has(partition));
            throw new KafkaJSMetadataNotLoaded(
              `No metadata for topic "${plan.topic}", partition ${missing.join(', ')}`,
            );
          }
          for (const [nodeId, ledPartitions] of Object.entries(partitionsPerLeader)) {
            const broker = await cluster.findBroker({ nodeId });
            const list = perBroker.get(broker) ?? [];
            list.push({ plan, partitions: ledPartitions });
            perBroker.set(broker, list);
          }
        }
        return [...perBroker].map(([broker, planned]) => {
          const request = sendToBroker(broker, planned);
          inFlight.add(request);
          void request.then(
            () => inFlight.delete(request),
            () => inFlight.delete(request),
          );
          return request;
        });
      };

      const sent = retrier(async (bail: (error: Error) => void, retryCount: number, retryTime: number) => {
        const topics = topicMessages.map(({ topic }: { topic: string }) => topic);
        await cluster.addMultipleTargetTopics(topics);

        try {
          const requests = await createProducerRequests();
          await Promise.all(requests);
          return [...acknowledged.values()].filter((response) => response !== null);
        } catch (e: any) {
          if (e.name === 'KafkaJSConnectionClosedError') {
            cluster.removeBroker({ host: e.host, port: e.port });
          }

          if (!cluster.isConnected()) {
            logger.debug(`Cluster has disconnected, reconnecting: ${e.message}`, { retryCount, retryTime });
            await cluster.connect();
            await cluster.refreshMetadata();
            throw e;
          }

          if (
            staleMetadata(e) ||
            e.name === 'KafkaJSMetadataNotLoaded' ||
            e.name === 'KafkaJSConnectionError' ||
            e.name === 'KafkaJSConnectionClosedError' ||
            (e.name === 'KafkaJSProtocolError' && e.retriable)
          ) {
            logger.error(`Failed to send messages: ${e.message}`, { retryCount, retryTime });
            await cluster.refreshMetadata();
            throw e;
          }

          logger.error(`${e.message}`, { retryCount, retryTime });
          if (e.retriable) throw e;
          bail(e);
        }
      });
      try {
        return await sent;
      } catch (e) {
        if (renewable() && keptUnresolved()) renewal.needed = true;
        if (e instanceof Error) {
          e.message = withUnacknowledged(
            e.message,
            topicMessages.map(({ topic }: { topic: string }) => topic),
            plans,
            acknowledged,
          );
        }
        throw e;
      } finally {
        settled = true;
        // After renewal.needed is set: the next send() of a partition waits for the new producer id.
        if (queued)
          order.leaveAll(
            turn,
            plannedKeys(plans!).filter((key) => !acknowledged.has(key)),
          );
      }
    };
}
