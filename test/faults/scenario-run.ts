import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs from 'kafkajs';
import type { Admin, Kafka as KafkaClient, KafkaConfig } from 'kafkajs';
import { DLT_HEADERS } from 'nest-kafka-groups';
import {
  analyse,
  deadLetterPartitionsOf,
  recordsWithoutOutcome,
  type DeadLetter,
  type Delivery,
  type FaultEvent,
  type GracefulStop,
  type LogLine,
  type Observations,
  type Row,
  type TopicRecord,
} from './analysis.js';
import {
  injectedFailure,
  isUnkeyed,
  RETRY_ATTEMPTS,
  retryTopicsOf,
  type WorkerEnv,
  type WorkerLine,
} from './protocol.js';
import { WorkerProcess } from './worker-process.js';

const { Kafka, logLevel } = kafkajs;
/** kafkajs's DefaultPartitioner hash, to name the partition a lost message was meant for. */
const murmur2 = createRequire(import.meta.url)('kafkajs/src/producer/partitioners/default/murmur2.js') as (
  key: string,
) => number;

/** Client retries for the runner's own admin and reader: explicit, and patient through a broker outage. */
export const RUNNER_RETRY = { initialRetryTime: 100, maxRetryTime: 2_000, retries: 15 };

export const PARTITIONS = 6;
/** Fewer than the source topic's: source partitions 3 to 5 go to the dead-letter topic by key (round-robin without). */
export const DEAD_LETTER_PARTITIONS = 3;
/**
 * The drain fails once the group's commits stood still this long (a stuck partition), however long it ran before:
 * on a loaded host the workers get little CPU and the drain takes longer without anything being wrong.
 */
const DRAIN_STALL_MS = 90_000;
/** Bound on the whole drain, so that a group that commits a record now and then cannot hold CI for ever. */
const DRAIN_TIMEOUT_MS = 600_000;
/** A worker that has not started by then hangs: on a loaded host a Nest start takes tens of seconds. */
const READY_TIMEOUT_MS = 180_000;
const STABLE_TIMEOUT_MS = 60_000;
/** A fault step (and the wait for its start) that takes longer fails the scenario instead of hanging CI. */
export const STEP_TIMEOUT_MS = 120_000;
const DELIVERY_TIMEOUT_MS = 30_000;

/** The cluster a scenario runs on, as the runner started it. */
export interface ClusterHandle {
  name: string;
  brokers: string;
  replicationFactor: number;
  /** Topic configs for the scenario's topics (min.insync.replicas on the replicated cluster). */
  topicConfig: { name: string; value: string }[];
  /** A secured cluster: the runner's kafkajs connection settings (super user) and the workers' variables. */
  security?: { client: Pick<KafkaConfig, 'ssl' | 'sasl'>; workerEnv: Partial<WorkerEnv> };
  /** Broker controls, by 0-based node index. */
  stopAll(options: { keepData: boolean }): Promise<void>;
  startAll(options: { reuseData: boolean }): Promise<void>;
  killNode(index: number): Promise<void>;
  /** A clean shutdown of one node (SIGTERM: it hands its partition leadership over first), data kept. */
  stopNode(index: number): Promise<void>;
  startNode(index: number): Promise<void>;
}

/** Runs once the previous step finished and (if given) this fraction of the messages is acknowledged and this
 * many seconds of production passed. */
export interface ScenarioStep {
  at?: number;
  afterSeconds?: number;
  /** Default STEP_TIMEOUT_MS, for the wait for `at` and for `run` each. */
  timeoutMs?: number;
  run(run: ScenarioRun): Promise<void>;
}

export interface ScenarioSpec {
  name: string;
  description: string;
  cluster: 'single' | 'triple' | 'secured';
  workers: number;
  messages: number;
  /** Messages per second. */
  rate: number;
  failures?: boolean;
  poison?: boolean;
  /** Hostile messages mixed into the stream (protocol.ts `hostileOf`). */
  hostile?: boolean;
  /** Odd sequence numbers are sent without a key (round-robin over the partitions); even ones keyed. */
  unkeyed?: boolean;
  /** Milliseconds of simulated work per message in the handler. */
  workMs?: number;
  /** The members' session timeout (ms) instead of the suite's 6 s. */
  sessionTimeoutMs?: number;
  /** Milliseconds the slow messages (protocol.ts `isSlow`) take; their handler honours ctx.signal. */
  slowMs?: number;
  /** A fixed retry backoff (ms) instead of 50, 100 ms. */
  backoffMs?: number;
  /** Retries through retry topics (protocol.ts RETRY_TOPIC_DELAYS), which the runner creates and drains too. */
  retryTopics?: boolean;
  /** The consumers use a batch handler (`batch: true`, protocol.ts `BATCH_SIZE`) instead of the single one. */
  batch?: boolean;
  /** The consumers pause, resume, stop and start their group through KafkaGroups, one step every this many ms. */
  controlCycleMs?: number;
  /**
   * Consumer processes started with the members but not joining the group (`autoStart: false`) until a step lets
   * them (`joinStandby`): fresh members that join at once, without a process start-up in the middle of the storm.
   */
  standbys?: number;
  /** Runs only when named on the command line (`npm run test:faults -- <name>`), not in the default run (CI). */
  optIn?: boolean;
  /**
   * 'none' (default): the guarantees promise no record handled twice, any duplicate fails the scenario.
   * 'with-evidence': a crash or a lost broker allows duplicates, each with its cause found in the logs.
   */
  duplicates?: 'none' | 'with-evidence';
  expectedDeadLetter(seq: number): boolean;
  /** Leave the dead-letter topic to a step (created later, or with other configs). */
  deadLetterTopicByStep?: boolean;
  steps: ScenarioStep[];
}

export interface ScenarioResult {
  spec: ScenarioSpec;
  timings?: string[];
  row: Row;
  notes: string[];
  seconds: number;
  logDir: string;
  /** Records lost: the dead-letter partitions that should hold them, for a dump of their logs. */
  evidence?: LostEvidence;
}

export interface LostEvidence {
  seqs: number[];
  topic: string;
  partitions: number[];
}

/** One run of a scenario: its topics, group, worker processes and everything they reported. */
export class ScenarioRun {
  readonly topic: string;
  readonly deadLetterTopic: string;
  readonly group: string;
  readonly workers: WorkerProcess[] = [];
  readonly events: FaultEvent[] = [];
  readonly notes: string[] = [];
  readonly problems: string[] = [];
  /** Progress of the run for the runner's log. */
  readonly timings: string[] = [];
  /** Called with the observations once the run is over (for notes that need every delivery). */
  readonly afterRun: ((observations: Observations) => void)[] = [];
  private readonly deliveries: Delivery[] = [];
  private readonly failures: Delivery[] = [];
  private readonly logs: LogLine[] = [];
  private readonly stops: GracefulStop[] = [];
  private handlerLines = 0;
  private readonly acked = new Set<number>();
  private producerErrors = 0;
  private productionStart = 0;
  private productionEnd = 0;
  private producer?: WorkerProcess;
  /** Set when production failed: the fault steps still waiting do not run any more. */
  private productionFailed = false;
  private producerDone?: () => void;
  private productionStarted!: () => void;
  private readonly started = new Promise<void>((resolve) => (this.productionStarted = resolve));
  private readonly kafka: KafkaClient;
  private adminClient?: Admin;
  private workerCount = 0;
  private ackWaiters: { count: number; resolve: () => void }[] = [];
  private deliveryWaiters: { worker: string; resolve: () => void }[] = [];

  constructor(
    readonly spec: ScenarioSpec,
    readonly cluster: ClusterHandle,
    readonly logDir: string,
    suffix: string,
    private readonly say: (message: string) => void = () => undefined,
  ) {
    this.topic = `faults-${spec.name}-${suffix}`;
    this.deadLetterTopic = `${this.topic}-dlt`;
    this.group = `faults-${spec.name}-${suffix}`;
    mkdirSync(logDir, { recursive: true });
    this.kafka = new Kafka({
      ...cluster.security?.client,
      clientId: 'faults-runner',
      brokers: cluster.brokers.split(','),
      logLevel: logLevel.NOTHING,
      retry: RUNNER_RETRY,
    });
  }

  async admin(): Promise<Admin> {
    if (!this.adminClient) {
      const admin = this.kafka.admin({ retry: RUNNER_RETRY });
      await admin.connect();
      this.adminClient = admin;
    }
    return this.adminClient;
  }

  mark(label: string, extra: Partial<FaultEvent> = {}): FaultEvent {
    const event = { label, at: Date.now(), ...extra };
    this.events.push(event);
    const since = this.productionStart ? ` at +${seconds(event.at - this.productionStart)} s` : '';
    this.say(`${this.spec.name}: ${label}${since} (${this.acked.size} acknowledged)`);
    return event;
  }

  /** Resolves when `worker` next reports a processed message (so it has work in flight that may be uncommitted). */
  nextDeliveryBy(worker: WorkerProcess, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<void> {
    const next = new Promise<void>((resolve) => this.deliveryWaiters.push({ worker: worker.name, resolve }));
    return withTimeout(next, timeoutMs, `${worker.name} to report a processed message`);
  }

  /** Starts a consumer worker process and waits until its application started. */
  async spawnWorker({ standby = false } = {}): Promise<WorkerProcess> {
    const name = `w${++this.workerCount}`;
    const worker = new WorkerProcess(
      name,
      { ...this.workerEnv('consumer', name), ...(standby ? { FAULT_STANDBY: '1' } : {}) },
      join(this.logDir, `${name}.log`),
      (line, w) => this.onLine(line, w),
    );
    this.workers.push(worker);
    await withTimeout(worker.ready, READY_TIMEOUT_MS, `worker ${name} to start`);
    return worker;
  }

  /** Signals workers at once and records it as one fault event; resolves when the processes are gone. */
  async signalWorkers(workers: WorkerProcess[], signal: NodeJS.Signals, label?: string): Promise<void> {
    const names = workers.map((w) => w.name);
    this.mark(label ?? `${signal} ${names.join(', ')}`, { workers: names, signal });
    const started = Date.now();
    await Promise.all(workers.map((worker) => this.stopWorker(worker, signal)));
    if (signal === 'SIGTERM')
      this.notes.push(`${names.join(', ')} shut down in ${seconds(Date.now() - started)} s`);
  }

  /** Stops a worker; one sent SIGTERM once started is judged on its graceful exit (see analysis.ts). */
  private async stopWorker(worker: WorkerProcess, signal: NodeJS.Signals): Promise<void> {
    const graceful = signal === 'SIGTERM' && worker.alive && worker.isReady;
    const at = Date.now();
    const exit = await worker.stop(signal);
    if (graceful) this.stops.push({ worker: worker.name, at, closedAt: worker.closedAt, ...exit });
  }

  /** Members of the group still running (not signalled), oldest first. */
  liveWorkers(): WorkerProcess[] {
    return this.workers.filter((w) => w.alive && !w.signalled && w.inGroup);
  }

  /** Lets the first standby join the group and records it as a fault event (a rebalance); returns it. */
  joinStandby(label: string): WorkerProcess {
    const standby = this.workers.find((w) => w.alive && !w.signalled && !w.inGroup);
    if (!standby) throw new Error(`${this.spec.name}: no standby left to join the group`);
    // As a signal to that worker: evidence for what it handles, not a fault of the brokers.
    this.mark(label.replace('<worker>', standby.name), { workers: [standby.name] });
    standby.join();
    return standby;
  }

  /** Waits until the group is Stable with `members` members. */
  /** Log lines the workers wrote so far (their Nest Logger's, and the member status lines). */
  logLines(): readonly LogLine[] {
    return this.logs;
  }

  /** Injected handler failures reported so far. */
  failedDeliveries(): readonly Delivery[] {
    return this.failures;
  }

  async waitForStableGroup(members: number, timeoutMs = STABLE_TIMEOUT_MS): Promise<void> {
    const admin = await this.admin();
    await poll(`group ${this.group} Stable with ${members} member(s)`, timeoutMs, async () => {
      const { groups } = await admin.describeGroups([this.group]);
      return groups[0]?.state === 'Stable' && groups[0].members.length === members;
    });
  }

  /** Resolves once `fraction` of the messages is acknowledged by the broker. */
  ackedFraction(fraction: number): Promise<void> {
    const count = Math.ceil(this.spec.messages * fraction);
    if (this.acked.size >= count) return Promise.resolve();
    return new Promise((resolve) => this.ackWaiters.push({ count, resolve }));
  }

  async run(): Promise<ScenarioResult> {
    const startedAt = Date.now();
    try {
      await this.createTopics();
      await Promise.all(Array.from({ length: this.spec.workers }, () => this.spawnWorker()));
      await this.waitForStableGroup(this.spec.workers);
      this.timings.push(`members stable ${seconds(Date.now() - startedAt)} s`);
      if (this.spec.standbys) {
        // Once the members are up: all started at once, they missed the start-up bound on a busy machine.
        await Promise.all(
          Array.from({ length: this.spec.standbys }, () => this.spawnWorker({ standby: true })),
        );
        this.timings.push(`standbys ready ${seconds(Date.now() - startedAt)} s`);
      }

      const produced = this.startProducer();
      const steps = (async () => {
        await this.started;
        for (const [i, step] of this.spec.steps.entries()) {
          const timeoutMs = step.timeoutMs ?? STEP_TIMEOUT_MS;
          const what = `step ${i + 1} of ${this.spec.name}`;
          await withTimeout(this.ackedFraction(step.at ?? 0), timeoutMs, `${what} to be due`);
          if (step.afterSeconds !== undefined) {
            await sleep(this.productionStart + step.afterSeconds * 1000 - Date.now());
          }
          if (this.productionFailed) return;
          await withTimeout(step.run(this), timeoutMs, `${what} to finish`);
        }
      })();
      try {
        await Promise.all([produced, steps]);
        this.timings.push(`produced ${seconds(Date.now() - startedAt)} s`);
      } catch (error) {
        // Still let the group drain what was written: whether the consumers skipped anything is what counts.
        this.productionFailed = true;
        this.problems.push(`production or a fault step failed: ${(error as Error).message}`);
        await this.producer?.stop('SIGTERM');
      }
      await this.waitForDrain();
      this.timings.push(`drained ${seconds(Date.now() - startedAt)} s`);
      this.checkUnexpectedExits();
    } catch (error) {
      this.problems.push(`scenario aborted: ${(error as Error).message}`);
    } finally {
      await Promise.all(this.workers.map((w) => this.stopWorker(w, 'SIGTERM')));
      await this.producer?.stop('SIGTERM');
      this.timings.push(`workers stopped ${seconds(Date.now() - startedAt)} s`);
    }

    let row: Row;
    let evidence: LostEvidence | undefined;
    try {
      const [records, deadLetters] = await Promise.all([this.readSourceTopic(), this.readDeadLetters()]);
      const observations: Observations = {
        acked: this.acked,
        records,
        deliveries: this.deliveries,
        failures: this.failures,
        deadLetters,
        expectedDeadLetter: (seq) => this.spec.expectedDeadLetter(seq),
        events: this.events,
        productionStart: this.productionStart,
        productionEnd: this.productionEnd || Date.now(),
        partitionOf: (seq) => (murmur2(String(seq)) & 0x7fffffff) % PARTITIONS,
        logs: this.logs,
        stops: this.stops,
        duplicates: this.spec.duplicates ?? 'none',
        maxAttempts: RETRY_ATTEMPTS,
        attemptsInRecords: this.spec.retryTopics,
        failsOn: this.spec.failures ? injectedFailure : undefined,
      };
      row = analyse(observations);
      for (const hook of this.afterRun) hook(observations);
      if (row.problems.length > 0) this.saveObservations(observations);
      evidence = this.lostEvidence(observations);
    } catch (error) {
      row = emptyRow(`could not read the topics back: ${(error as Error).message}`);
    }
    row.problems.unshift(...this.problems);
    if (this.failures.length > 0)
      this.notes.push(`${this.failures.length} injected handler failures (retried)`);
    if (this.producerErrors > 0)
      this.notes.push(`${this.producerErrors} producer send(s) failed and were resent`);
    if (row.producerDuplicates > 0)
      this.notes.push(`${row.producerDuplicates} message(s) written twice by the producer`);
    await this.adminClient?.disconnect().catch(() => undefined);
    this.timings.push(`verified ${seconds(Date.now() - startedAt)} s`);
    const result = {
      spec: this.spec,
      row,
      notes: this.notes,
      seconds: (Date.now() - startedAt) / 1000,
      logDir: this.logDir,
      evidence,
    };
    return { ...result, timings: this.timings };
  }

  /** The records nobody processed or dead-lettered, and the dead-letter partitions that should hold them. */
  private lostEvidence(o: Observations): LostEvidence | undefined {
    const lost = recordsWithoutOutcome(o);
    if (lost.length === 0) return undefined;
    const partitions = deadLetterPartitionsOf(lost, DEAD_LETTER_PARTITIONS, (seq) =>
      this.spec.unkeyed && isUnkeyed(seq)
        ? undefined
        : (murmur2(String(seq)) & 0x7fffffff) % DEAD_LETTER_PARTITIONS,
    );
    return { seqs: lost.map((r) => r.seq), topic: this.deadLetterTopic, partitions };
  }

  /** What a failed run observed, for a post-mortem of its verdicts: observations.json beside the worker logs. */
  private saveObservations(o: Observations): void {
    const { deliveries, failures, deadLetters, events, logs, stops, productionStart, productionEnd } = o;
    const records = o.records.map(({ seq, partition, offset }) => ({ seq, partition, offset }));
    const dead = deadLetters.map(({ value: _value, ...rest }) => rest);
    const saved = {
      productionStart,
      productionEnd,
      events,
      stops,
      records,
      deliveries,
      failures,
      deadLetters: dead,
      logs,
    };
    writeFileSync(join(this.logDir, 'observations.json'), JSON.stringify(saved));
  }

  private workerEnv(role: WorkerEnv['FAULT_ROLE'], name: string): WorkerEnv {
    return {
      FAULT_ROLE: role,
      FAULT_BROKERS: this.cluster.brokers,
      FAULT_TOPIC: this.topic,
      FAULT_GROUP: this.group,
      FAULT_NAME: name,
      FAULT_FAILURES: this.spec.failures ? '1' : '0',
      FAULT_WORK_MS: String(this.spec.workMs ?? 2),
      FAULT_MESSAGES: String(this.spec.messages),
      FAULT_RATE: String(this.spec.rate),
      FAULT_POISON: this.spec.poison ? '1' : '0',
      FAULT_UNKEYED: this.spec.unkeyed ? '1' : '0',
      FAULT_HOSTILE: this.spec.hostile ? '1' : '0',
      ...(this.spec.slowMs ? { FAULT_SLOW_MS: String(this.spec.slowMs) } : {}),
      ...(this.spec.sessionTimeoutMs ? { FAULT_SESSION_TIMEOUT_MS: String(this.spec.sessionTimeoutMs) } : {}),
      ...(this.spec.backoffMs ? { FAULT_BACKOFF_MS: String(this.spec.backoffMs) } : {}),
      ...(this.spec.retryTopics ? { FAULT_RETRY_TOPICS: '1' } : {}),
      ...(this.spec.batch ? { FAULT_BATCH: '1' } : {}),
      ...(this.spec.controlCycleMs ? { FAULT_CONTROL_CYCLE_MS: String(this.spec.controlCycleMs) } : {}),
      ...(process.env.FAULT_CLIENT_RETRY ? { FAULT_CLIENT_RETRY: process.env.FAULT_CLIENT_RETRY } : {}),
      ...this.cluster.security?.workerEnv,
    };
  }

  private onLine(line: WorkerLine, worker: WorkerProcess): void {
    switch (line.kind) {
      case 'P':
        this.deliveries.push({ ...line, worker: worker.name, order: this.handlerLines++ });
        if (this.deliveryWaiters.length > 0) {
          this.deliveryWaiters = this.deliveryWaiters.filter((w) =>
            w.worker === worker.name ? (w.resolve(), false) : true,
          );
        }
        break;
      case 'F':
        this.failures.push({ ...line, worker: worker.name, order: this.handlerLines++ });
        break;
      case 'L':
        this.logs.push({ ...line, worker: worker.name });
        break;
      case 'CLOSED':
        worker.closedAt = line.at;
        break;
      case 'A':
        for (let seq = line.first; seq <= line.last; seq++) this.acked.add(seq);
        this.ackWaiters = this.ackWaiters.filter((w) =>
          this.acked.size >= w.count ? (w.resolve(), false) : true,
        );
        break;
      case 'E':
        this.producerErrors++;
        break;
      case 'DONE':
        this.productionEnd = line.at;
        this.say(
          `${this.spec.name}: every message acknowledged at +${seconds(line.at - this.productionStart)} s`,
        );
        this.producerDone?.();
        break;
    }
  }

  private async createTopics(): Promise<void> {
    const admin = await this.admin();
    const { replicationFactor, topicConfig } = this.cluster;
    const topics = this.spec.deadLetterTopicByStep ? [this.topic] : [this.topic, this.deadLetterTopic];
    if (this.spec.retryTopics) topics.push(...retryTopicsOf(this.topic));
    await admin.createTopics({
      // Waited for below: on a fresh cluster kafkajs's own wait can fail while the brokers learn of the topic.
      waitForLeaders: false,
      topics: topics.map((topic) => ({
        topic,
        numPartitions: topic === this.deadLetterTopic ? DEAD_LETTER_PARTITIONS : PARTITIONS,
        replicationFactor,
        configEntries: topicConfig,
      })),
    });
    await poll('the topics to have a leader and every replica in sync', 30_000, async () => {
      const { topics: described } = await admin.fetchTopicMetadata({ topics });
      return described.every((t) =>
        t.partitions.every((p) => p.leader >= 0 && p.isr.length === replicationFactor),
      );
    });
    await this.checkTopicConfigs(topics);
  }

  /**
   * Reads back what the cluster made of the topics (replicas per partition, and every config the scenario set):
   * a dead-letter or retry topic with fewer replicas or a lower min.insync.replicas than its source topic would
   * lose acknowledged writes with a broker, whatever the producer does.
   */
  private async checkTopicConfigs(topics: string[]): Promise<void> {
    const { replicationFactor, topicConfig } = this.cluster;
    // A single node: replication factor 1 is checked by the wait for every replica in sync, nothing else is set.
    if (topicConfig.length === 0) return;
    const admin = await this.admin();
    const { topics: described } = await admin.fetchTopicMetadata({ topics });
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({
        type: kafkajs.ConfigResourceTypes.TOPIC,
        name,
        configNames: topicConfig.map((c) => c.name),
      })),
    });
    const found: string[] = [];
    for (const topic of topics) {
      const replicas = new Set(
        described.find((t) => t.name === topic)?.partitions.map((p) => p.replicas.length),
      );
      const configs = resources.find((r) => r.resourceName === topic)?.configEntries ?? [];
      const settings = topicConfig.map(
        ({ name }) => `${name} ${configs.find((e) => e.configName === name)?.configValue}`,
      );
      found.push(`${topic}: replicas ${[...replicas].join('/')}${settings.map((x) => `, ${x}`).join('')}`);
      const wrong =
        replicas.size !== 1 ||
        !replicas.has(replicationFactor) ||
        topicConfig.some(
          ({ name, value }) => configs.find((e) => e.configName === name)?.configValue !== value,
        );
      if (wrong) {
        this.problems.push(
          `topic ${topic} was created with ${found.at(-1)}, not replication factor ${replicationFactor}` +
            topicConfig.map(({ name, value }) => `, ${name} ${value}`).join(''),
        );
      }
    }
    this.notes.push(`topics as the cluster reports them: ${found.join('; ')}`);
  }

  private async startProducer(): Promise<void> {
    const done = new Promise<void>((resolve) => (this.producerDone = resolve));
    const producer = new WorkerProcess(
      'producer',
      this.workerEnv('producer', 'producer'),
      join(this.logDir, 'producer.log'),
      (line, w) => this.onLine(line, w),
    );
    this.producer = producer;
    await withTimeout(producer.ready, READY_TIMEOUT_MS, 'the producer to start');
    this.productionStart = Date.now();
    this.productionStarted();
    this.say(`${this.spec.name}: producing ${this.spec.messages} messages at ${this.spec.rate}/s`);
    const exited = producer.exited.then((exit) => {
      if (!this.productionEnd)
        throw new Error(`the producer exited (${exit.signal ?? exit.code}) before it finished`);
    });
    // The duration at the nominal rate plus a minute for outages.
    const budget = (this.spec.messages / this.spec.rate) * 1000 + 60_000;
    await withTimeout(Promise.race([done, exited]), budget, 'the producer to send every message');
  }

  /**
   * Until the group committed the end of every partition (everything processed or dead-lettered), of the retry
   * topics too, read in the chain's order: a record moves on to the next topic before its offset is committed.
   */
  private async waitForDrain(): Promise<void> {
    const admin = await this.admin();
    const topics = [this.topic, ...(this.spec.retryTopics ? retryTopicsOf(this.topic) : [])];
    const startedAt = Date.now();
    let movedAt = startedAt;
    let committedSoFar = -1;
    let last = '';
    let lastError: unknown;
    for (;;) {
      try {
        const behind: string[] = [];
        let committedNow = 0;
        for (const topic of topics) {
          const [committed] = await admin.fetchOffsets({ groupId: this.group, topics: [topic] });
          const ends = await admin.fetchTopicOffsets(topic);
          for (const { partition, high } of ends) {
            const offset = committed.partitions.find((p) => p.partition === partition)?.offset ?? '-1';
            committedNow += Math.max(Number(offset), 0);
            // A partition that never held a record has nothing to commit.
            if (Number(high) > 0 && Number(offset) < Number(high))
              behind.push(`${topic}[${partition}] end ${high}`);
          }
        }
        last = behind.join(', ');
        if (behind.length === 0) return;
        if (committedNow > committedSoFar) {
          committedSoFar = committedNow;
          movedAt = Date.now();
        }
      } catch (error) {
        lastError = error;
      }
      const now = Date.now();
      if (now - movedAt > DRAIN_STALL_MS || now - startedAt > DRAIN_TIMEOUT_MS) {
        throw new Error(
          `timed out waiting for the group to commit every partition to its end: no commit moved for ` +
            `${((now - movedAt) / 1000).toFixed(0)} s, ${((now - startedAt) / 1000).toFixed(0)} s in all` +
            `${lastError ? ` (${String(lastError)})` : ''}; behind: ${last}`,
        );
      }
      await sleep(200);
    }
  }

  private checkUnexpectedExits(): void {
    for (const worker of this.workers) {
      if (!worker.alive && !worker.signalled) {
        this.problems.push(
          `${worker.name} exited unexpectedly (${worker.exit?.signal ?? worker.exit?.code}); see ${worker.logFile}`,
        );
      }
    }
  }

  private async readSourceTopic(): Promise<TopicRecord[]> {
    const messages = await this.readAll(this.topic);
    return messages.map(({ partition, message }) => ({
      seq: seqOf(message),
      partition,
      offset: message.offset,
      value: message.value?.toString('hex'),
    }));
  }

  private async readDeadLetters(): Promise<DeadLetter[]> {
    const messages = await this.readAll(this.deadLetterTopic);
    return messages.map(({ message }) => {
      const headers = message.headers ?? {};
      const partition = headers[DLT_HEADERS.originalPartition] as Buffer;
      const offset = headers[DLT_HEADERS.originalOffset] as Buffer;
      return {
        seq: seqOf(message),
        partition: partition.readInt32BE(),
        offset: offset.readBigInt64BE().toString(),
        at: Number(message.timestamp),
        value: message.value?.toString('hex'),
      };
    });
  }

  /** Every record of `topic`, read by a throw-away group up to the end offsets as they are now. */
  private async readAll(topic: string) {
    const admin = await this.admin();
    const ends = new Map(
      (await admin.fetchTopicOffsets(topic)).map(({ partition, high, low }) => [
        partition,
        { high: Number(high), low: Number(low) },
      ]),
    );
    const total = [...ends.values()].reduce((sum, { high, low }) => sum + high - low, 0);
    // By partition and offset: a reader that restarts (a broker is down) may see a batch twice.
    const read = new Map<string, { partition: number; message: kafkajs.KafkaMessage }>();
    if (total === 0) return [];
    const consumer = this.kafka.consumer({
      groupId: `${this.group}-verify-${topic.endsWith('-dlt') ? 'dlt' : 'source'}`,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      retry: RUNNER_RETRY,
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (Number(message.offset) < ends.get(partition)!.high)
            read.set(`${partition}@${message.offset}`, { partition, message });
        },
      });
      await poll(`reading ${total} record(s) of ${topic}`, 60_000, () => read.size >= total);
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
    return [...read.values()];
  }
}

/** The row of a scenario that produced nothing to analyse, with the reason as its only problem. */
export function emptyRow(problem: string): Row {
  return {
    produced: 0,
    records: 0,
    processed: 0,
    duplicates: 0,
    lost: 0,
    deadLettered: 0,
    recoverySeconds: undefined,
    recovery: [],
    duplicateReasons: new Map(),
    producerDuplicates: 0,
    problems: [problem],
  };
}

export function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

export async function poll(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (${String(lastError)})` : ''}`,
      );
    }
    await sleep(200);
  }
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The record's sequence number: its key, or for an unkeyed message the `seq` in its (JSON) value. */
function seqOf(message: { key: Buffer | null; value: Buffer | null }): number {
  if (message.key !== null) return Number(message.key.toString());
  return Number((JSON.parse(String(message.value)) as { seq: unknown }).seq);
}
