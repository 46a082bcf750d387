import { Logger } from '@nestjs/common';
import { type Admin, ConfigResourceTypes, type Kafka } from '../client/kafkajs.js';
import { authorizationFailureOf, type SecurityIdentity } from '../client/security-failures.js';
import { KafkaAuthorizationError } from '../errors/kafka-authorization.error.js';
import { KafkaMissingTopicError } from '../errors/kafka-missing-topic.error.js';
import { plural, quotedTopics, topicResource } from '../errors/topic-names.js';
import { errorTypes } from '../dead-letter/dead-letter-write.js';
import type { ResolvedTopicOptions } from '../kafka.options.js';
import type { GroupPlan } from './group-plan.js';
import { MAX_EXCEPTION_MESSAGE_BYTES, MAX_STACK_TRACE_BYTES } from '../dead-letter/dead-letter-headers.js';

/** Topics the broker refused to create for lack of ACLs, and its first refusal. */
interface CreateRefusal {
  topics: string[];
  cause: unknown;
}

/** max.message.bytes of topics, and why those of the sources it could not read were not read. */
interface Sizes {
  bytes: Map<string, number>;
  unread: Map<string, string>;
}

/** One topic a group needs: a handler's source topic or its dead-letter topic. */
export interface TopicRequirement {
  topic: string;
  /** What the topic is for, in log lines: `source of Orders.onOrder` or `dead letters of Orders.onOrder`. */
  role: string;
  options: ResolvedTopicOptions;
  /** A retry topic: created with as many partitions as this topic (its main topic) has. */
  partitionsOf?: string;
  /**
   * A retry or dead-letter topic: created with this topic's max.message.bytes plus HEADER_ROOM_BYTES, unless
   * `topics.config` sets it, so that a record its source topic took fits with the headers added to it.
   */
  sizeOf?: string;
  /** A retry topic: the longest delay of the retries it holds, added to a `retention.ms` from `topics.config`. */
  delayMs?: number;
}

/**
 * Room for what a retry or dead-letter record adds to its source record: Spring's headers, of which only the stack
 * trace and the message grow with the error (each bounded), and, in the rest, the short headers (original topic,
 * partition, offset, the classes, the retry headers of each hop).
 */
const HEADER_ROOM_BYTES = MAX_STACK_TRACE_BYTES + MAX_EXCEPTION_MESSAGE_BYTES + 4_096;
const MAX_MESSAGE_BYTES = 'max.message.bytes';
const CLEANUP_POLICY = 'cleanup.policy';
const RETENTION_MS = 'retention.ms';

/** Bounded retries per pass: a broker that is away fails the pass, and the group runner tries again later. */
const ADMIN_RETRY = { retries: 2, initialRetryTime: 300, maxRetryTime: 2_000 };

/** The topics of a group's handlers and, where dead letters are on, their dead-letter topics. */
export function topicRequirements(plan: GroupPlan): TopicRequirement[] {
  const wanted = new Map<string, TopicRequirement>();
  for (const route of plan.routes.values()) {
    const { topics: options, deadLetter } = route.settings;
    if (!options.create && options.check === false) continue;
    if (route.isRetryTopic) {
      const chain = route.retryTopics!;
      const partitionsOf = chain.mainTopic;
      wanted.set(route.topic, {
        topic: route.topic,
        role: `retry topic of ${route.handlerName}`,
        options,
        partitionsOf,
        sizeOf: partitionsOf,
        delayMs: Math.max(...chain.steps.map((step, i) => (step === route.topic ? chain.delaysMs[i] : 0))),
      });
      continue;
    }
    if (!wanted.has(route.topic))
      wanted.set(route.topic, { topic: route.topic, role: `source of ${route.handlerName}`, options });
    if (deadLetter.enabled && !wanted.has(route.deadLetterTopic)) {
      wanted.set(route.deadLetterTopic, {
        topic: route.deadLetterTopic,
        role: `dead letters of ${route.handlerName}`,
        options,
        sizeOf: route.topic,
      });
    }
  }
  return [...wanted.values()];
}

/**
 * Makes sure a group's topics exist before its members join: creates the missing ones where `topics.create` is on
 * (each on its own, so a topic another process created meanwhile is no error), and reports the others with a
 * `KafkaMissingTopicError` that names them, the group and the option. Existing topics are left as they are.
 */
export class TopicProvisioner {
  private readonly logger = new Logger(TopicProvisioner.name);
  /** Partition-count mismatches already reported, so a retried pass does not repeat them. */
  private readonly reported = new Set<string>();
  /** The admin client of each group's pass under way, for `cancel`. */
  private readonly passes = new Map<string, Admin>();

  constructor(
    private readonly kafka: Kafka,
    private readonly identity: SecurityIdentity,
  ) {}

  /**
   * Ends the group's pass under way (its group stops): disconnecting its admin client also ends a connect still
   * retrying against a broker that is down, so nothing of it outlives the stop. The pass then rejects.
   */
  cancel(groupId: string): void {
    this.passes
      .get(groupId)
      ?.disconnect()
      .catch(() => undefined);
  }

  async ensure(groupId: string, requirements: TopicRequirement[]): Promise<void> {
    if (requirements.length === 0) return;
    const admin = this.kafka.admin({ retry: ADMIN_RETRY });
    this.passes.set(groupId, admin);
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const missing = requirements.filter((r) => !existing.has(r.topic));
      const toCreate = missing.filter((r) => r.options.create);
      // Source topics first: the retry topics take their main topic's partition count, they and the dead-letter
      // topics its size.
      const [allDerived, sources] = split(toCreate, (r) => r.sizeOf !== undefined);
      const sourceRefusal = sources.length > 0 ? await this.create(admin, groupId, sources) : undefined;
      // A retry or dead-letter topic whose source was refused waits for it, named with it; the others are created.
      const refusedSources = new Set(sourceRefusal?.topics);
      const [waiting, derived] = split(
        allDerived,
        (r) =>
          refusedSources.has(r.sizeOf!) ||
          (r.partitionsOf !== undefined && refusedSources.has(r.partitionsOf)),
      );
      // One DescribeConfigs for the sources' sizes, which the retry and dead-letter topics to create take and those
      // that exist are compared with, and for the sizes of those that exist.
      const present = new Set([
        ...existing,
        ...sources.map((r) => r.topic).filter((t) => !refusedSources.has(t)),
      ]);
      const sized = requirements.filter((r) => r.sizeOf !== undefined && existing.has(r.topic));
      const sizes =
        derived.length > 0 || sized.length > 0
          ? await this.sizes(admin, derived, sized, present)
          : { bytes: new Map<string, number>(), unread: new Map<string, string>() };
      this.compareSizes(groupId, sized, sizes.bytes);
      let derivedRefusal: CreateRefusal | undefined;
      if (derived.length > 0) {
        const retryTopics = derived.filter((r) => r.partitionsOf !== undefined);
        const partitions = retryTopics.length > 0 ? await partitionCounts(admin, retryTopics) : undefined;
        derivedRefusal = await this.create(admin, groupId, derived, partitions, sizes);
      }
      if (sourceRefusal || derivedRefusal) {
        throw this.refusedCreate({
          topics: [
            ...(sourceRefusal?.topics ?? []),
            ...waiting.map((r) => r.topic),
            ...(derivedRefusal?.topics ?? []),
          ],
          cause: sourceRefusal?.cause ?? derivedRefusal!.cause,
        });
      }
      await this.checkPartitions(
        admin,
        groupId,
        requirements.filter((r) => existing.has(r.topic)),
      );
      const absent = missing.filter((r) => !r.options.create).map((r) => r.topic);
      const absence = absent.length > 0 ? await this.absence(admin, groupId, absent) : undefined;
      if (absence) throw absence;
    } finally {
      if (this.passes.get(groupId) === admin) this.passes.delete(groupId);
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async create(
    admin: Admin,
    groupId: string,
    requirements: TopicRequirement[],
    mainPartitions?: ReadonlyMap<string, number>,
    sizes?: Sizes,
  ): Promise<CreateRefusal | undefined> {
    const defaults = requirements.some(
      (r) => r.options.partitions === undefined || r.options.replicationFactor === undefined,
    )
      ? await this.brokerDefaults(admin)
      : undefined;
    const results = await Promise.allSettled(
      requirements.map(async ({ topic, role, options, partitionsOf, sizeOf, delayMs }) => {
        const numPartitions =
          (partitionsOf && mainPartitions?.get(partitionsOf)) || options.partitions || defaults!.partitions;
        const replicationFactor = options.replicationFactor ?? defaults!.replicationFactor;
        const config = { ...options.config };
        const sourceBytes = sizeOf === undefined ? undefined : sizes?.bytes.get(sizeOf);
        const unread =
          sizeOf === undefined || config[MAX_MESSAGE_BYTES] !== undefined
            ? undefined
            : sizes?.unread.get(sizeOf);
        if (sourceBytes !== undefined && config[MAX_MESSAGE_BYTES] === undefined)
          config[MAX_MESSAGE_BYTES] = String(sourceBytes + HEADER_ROOM_BYTES);
        // A compacted retry or dead-letter topic keeps only a key's last record: a key's earlier dead letters, and
        // its retries not yet due, would be dropped. The source's compaction is for its own records.
        const uncompacted = sizeOf !== undefined && /compact/.test(config[CLEANUP_POLICY] ?? '');
        if (uncompacted) config[CLEANUP_POLICY] = 'delete';
        // A retry record is written when its attempt fails and read once due: kept as long as the configured retention
        // from then on, retention cannot delete it before it is due.
        const retention = Number(config[RETENTION_MS]);
        const lengthened = delayMs !== undefined && delayMs > 0 && retention >= 0;
        if (lengthened) config[RETENTION_MS] = String(retention + delayMs);
        const created = await admin.createTopics({
          waitForLeaders: true,
          topics: [
            {
              topic,
              numPartitions,
              replicationFactor,
              configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
            },
          ],
        });
        if (!created) return;
        const size = sourceBytes === undefined ? '' : `, ${MAX_MESSAGE_BYTES} ${config[MAX_MESSAGE_BYTES]}`;
        const policy = uncompacted ? `, ${CLEANUP_POLICY} delete (not compact as topics.config says)` : '';
        const kept = lengthened
          ? `, ${RETENTION_MS} ${config[RETENTION_MS]} (topics.config's plus its longest delay, ${delayMs} ms)`
          : '';
        const line =
          `Created topic "${topic}" (${role}, group "${groupId}"): ${numPartitions} partition(s), ` +
          `replication factor ${replicationFactor}${size}${policy}${kept}`;
        // Said here, where a topic is created with it: a pass whose creates are refused made none too small.
        if (unread === undefined) this.logger.log(line);
        else
          this.logger.warn(
            `${line}, the broker's default ${MAX_MESSAGE_BYTES}: that of its source topic "${sizeOf}" could not ` +
              `be read (${unread})`,
          );
      }),
    );
    // Every topic's creation is tried, so that a refusal names all the topics refused and only those.
    const refused: string[] = [];
    let cause: unknown;
    for (const [index, result] of results.entries()) {
      if (result.status === 'fulfilled') continue;
      if (!authorizationFailureOf(result.reason, this.identity, { operation: 'create' })) throw result.reason;
      refused.push(requirements[index].topic);
      cause ??= result.reason;
    }
    return refused.length > 0 ? { topics: refused, cause } : undefined;
  }

  /**
   * Why topics are not listed: missing (a KafkaMissingTopicError), or hidden from this user, whose DESCRIBE is
   * refused (whether they exist is then hidden too); nothing when all were created since the listing. The broker
   * tells each topic's case apart.
   */
  private async absence(admin: Admin, groupId: string, topics: string[]): Promise<Error | undefined> {
    const results = await Promise.allSettled(
      topics.map((topic) => admin.fetchTopicMetadata({ topics: [topic] })),
    );
    const unknown: string[] = [];
    const hidden: string[] = [];
    let refusal: unknown;
    for (const [index, result] of results.entries()) {
      if (result.status === 'fulfilled') continue; // created meanwhile: the next pass finds it
      if (authorizationFailureOf(result.reason, this.identity, { operation: 'describe' })) {
        hidden.push(topics[index]);
        refusal ??= result.reason;
      } else if (errorTypes(result.reason).has('UNKNOWN_TOPIC_OR_PARTITION')) unknown.push(topics[index]);
      else return result.reason as Error;
    }
    if (unknown.length === 0 && hidden.length > 0) {
      return new KafkaAuthorizationError(
        'describe',
        topicResource(hidden),
        this.identity.principal,
        refusal,
        `whether ${plural(hidden, 'it exists', 'they exist')} is hidden without DESCRIBE: grant DESCRIBE, and READ ` +
          'or WRITE as the group needs',
      );
    }
    // All created since the listing: nothing to report.
    if (unknown.length === 0) return undefined;
    return new KafkaMissingTopicError(unknown, groupId, hidden, this.identity.principal);
  }

  /** The broker's defaults for new topics; a refusal names the cluster's configs, the ACL and the settings. */
  private async brokerDefaults(admin: Admin): Promise<{ partitions: number; replicationFactor: number }> {
    try {
      return await brokerDefaults(admin);
    } catch (error) {
      if (!authorizationFailureOf(error, this.identity, { operation: 'describe' })) throw error;
      throw new KafkaAuthorizationError(
        'describe the configs of',
        'the cluster',
        this.identity.principal,
        error,
        "the broker's num.partitions and default.replication.factor, for the topics it creates: grant " +
          'DESCRIBE_CONFIGS on the cluster, or set topics.partitions and topics.replicationFactor',
      );
    }
  }

  /**
   * The topics the broker would not let this user create, and those not tried since they depend on them. Without
   * DESCRIBE a topic that exists is not listed, so it is created too, and refused the same way.
   */
  private refusedCreate({ topics, cause }: CreateRefusal): KafkaAuthorizationError {
    return new KafkaAuthorizationError(
      'create',
      topicResource(topics),
      this.identity.principal,
      cause,
      `${plural(topics, 'it is', 'they are')} missing or not visible without DESCRIBE; ` +
        `create ${plural(topics, 'it', 'them')} or grant CREATE`,
    );
  }

  /**
   * max.message.bytes of the topics the retry and dead-letter topics take their size from, those that exist, and of
   * the retry and dead-letter topics that exist (`sized`), in one DescribeConfigs. A user not allowed to describe
   * their configs gets no comparison, and the topics to create the broker's default, said when they are created.
   * Any other failure fails the pass, which is retried: a topic created too small stays so.
   */
  private async sizes(
    admin: Admin,
    derived: TopicRequirement[],
    sized: TopicRequirement[],
    present: ReadonlySet<string>,
  ): Promise<Sizes> {
    const sizes: Sizes = { bytes: new Map(), unread: new Map() };
    const sources = [...new Set([...derived, ...sized].map((r) => r.sizeOf!))].filter((topic) =>
      present.has(topic),
    );
    if (sources.length === 0) return sizes;
    const names = [...new Set([...sources, ...sized.map((r) => r.topic)])];
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: names.map((name) => ({
          type: ConfigResourceTypes.TOPIC,
          name,
          configNames: [MAX_MESSAGE_BYTES],
        })),
      });
      for (const { resourceName, configEntries } of resources) {
        const bytes = Number(configEntries.find((e) => e.configName === MAX_MESSAGE_BYTES)?.configValue);
        if (Number.isInteger(bytes) && bytes > 0) sizes.bytes.set(resourceName, bytes);
      }
    } catch (error) {
      const context = { operation: 'describe the configs of', topics: names };
      if (!authorizationFailureOf(error, this.identity, context)) throw error;
      const reason = (error as Error).message;
      if (sized.length > 0) {
        // A comparison not made changes nothing: not worth a WARN for a user without DESCRIBE_CONFIGS.
        this.logger.debug(
          `Could not read ${MAX_MESSAGE_BYTES} of ${quotedTopics(names)} (${reason}): retry and dead-letter topics ` +
            'not compared with their source topics',
        );
        // The refusal may be the existing topics' only: the sizes the topics to create take are read alone.
        if (derived.length > 0) return this.sizes(admin, derived, [], present);
      } else for (const source of sources) sizes.unread.set(source, reason);
    }
    return sizes;
  }

  /**
   * One WARN per existing retry or dead-letter topic smaller than its source topic: a record the source took may
   * not fit there (a retry topic then stops its partition, a dead letter becomes a stub). Left as it is.
   */
  private compareSizes(groupId: string, sized: TopicRequirement[], sizes: ReadonlyMap<string, number>): void {
    for (const { topic, role, sizeOf, partitionsOf } of sized) {
      const own = sizes.get(topic);
      const source = sizes.get(sizeOf!);
      if (own === undefined || source === undefined || own >= source) continue;
      const key = `${topic} ${MAX_MESSAGE_BYTES} ${own} < ${source}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      const wanted = source + HEADER_ROOM_BYTES;
      // A secured cluster's tool needs the client's security settings, in a file only the operator has.
      const commandConfig =
        this.identity.mechanism === 'PLAINTEXT' ? '' : ' --command-config <client.properties>';
      const then =
        partitionsOf === undefined
          ? 'its dead letter is then a stub without the record'
          : 'its partition then stops when the record fails';
      this.logger.warn(
        `Topic "${topic}" (${role}, group "${groupId}") has ${MAX_MESSAGE_BYTES} ${own}, less than the ${source} of ` +
          `its source topic "${sizeOf}": a record that fits there may not fit here (${then}). Existing topics are ` +
          `never changed; raise it to ${wanted} (the source's size and room for the headers): kafka-configs.sh ` +
          `--bootstrap-server ${this.identity.brokers}${commandConfig} --alter --entity-type topics ` +
          `--entity-name ${topic} --add-config ${MAX_MESSAGE_BYTES}=${wanted}`,
      );
    }
  }

  private async checkPartitions(
    admin: Admin,
    groupId: string,
    requirements: TopicRequirement[],
  ): Promise<void> {
    const declared = requirements.filter(
      (r) => r.options.partitions !== undefined && !this.reported.has(r.topic),
    );
    if (declared.length === 0) return;
    const { topics } = await admin.fetchTopicMetadata({ topics: declared.map((r) => r.topic) });
    for (const { name, partitions } of topics) {
      const wanted = declared.find((r) => r.topic === name)!.options.partitions;
      if (partitions.length !== wanted) {
        this.reported.add(name);
        this.logger.warn(
          `Topic "${name}" (group "${groupId}") exists with ${partitions.length} partition(s), not the ${wanted} of ` +
            'topics.partitions: left as it is (existing topics are never changed)',
        );
      }
    }
  }
}

function split<T>(items: T[], predicate: (item: T) => boolean): [T[], T[]] {
  return [items.filter(predicate), items.filter((item) => !predicate(item))];
}

/** Partitions of each retry topic's main topic, as the cluster has them now. */
async function partitionCounts(admin: Admin, retryTopics: TopicRequirement[]): Promise<Map<string, number>> {
  const mains = [...new Set(retryTopics.map((r) => r.partitionsOf!))];
  const { topics } = await admin.fetchTopicMetadata({ topics: mains });
  return new Map(topics.map(({ name, partitions }) => [name, partitions.length]));
}

/** The broker's own defaults for new topics (CreateTopics before version 4 cannot ask for them with -1). */
async function brokerDefaults(admin: Admin): Promise<{ partitions: number; replicationFactor: number }> {
  const { controller, brokers } = await admin.describeCluster();
  const nodeId = controller ?? brokers[0].nodeId;
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [
      {
        type: ConfigResourceTypes.BROKER,
        name: String(nodeId),
        configNames: ['num.partitions', 'default.replication.factor'],
      },
    ],
  });
  const value = (name: string) =>
    Number(resources[0]?.configEntries.find((e) => e.configName === name)?.configValue);
  const partitions = value('num.partitions');
  const replicationFactor = value('default.replication.factor');
  return {
    partitions: Number.isInteger(partitions) && partitions > 0 ? partitions : 1,
    replicationFactor: Number.isInteger(replicationFactor) && replicationFactor > 0 ? replicationFactor : 1,
  };
}
