import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
} from '@nestjs/common';
import { type CustomTransportStrategy, Server } from '@nestjs/microservices';
import { INTEROP_ASSIGNERS } from '../assignors/interop.assigners.js';
import { clientRetryOf, consumerRetryOf, createKafkaClient } from '../client/kafka-client.factory.js';
import { compressionType, type Kafka } from '../client/kafkajs.js';
import { securityIdentityOf } from '../client/security-failures.js';
import { DeadLetterPublisher } from '../dead-letter/dead-letter-publisher.js';
import { quotedTopics } from '../errors/topic-names.js';
import { KAFKA_CLIENT, KAFKA_GROUPS_TRANSPORT, KAFKA_MODULE_OPTIONS } from '../kafka.constants.js';
import { type KafkaModuleOptions, resolveRestartBackoff } from '../kafka.options.js';
import { KafkaShutdown } from '../shutdown/kafka-shutdown.js';
import { combineObservers, type MemberObserver } from './member-observer.js';
import { planGroups } from './group-plan.js';
import { GroupRunner } from './group-runner.js';
import { groupsStatus, type KafkaGroupsStatus } from './groups-status.js';
import type { HandlerInvoker } from './handler-pipeline.js';
import { KafkaHandlerExplorer } from './kafka-handler.explorer.js';
import { TopicProvisioner } from './topic-provisioner.js';
import type { KafkaTracingHooks } from './tracing-hooks.js';

/**
 * The custom transport strategy: one consumer group per feature module, each serving only its module's
 * `@KafkaHandler` methods. Connect it with `app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) })`.
 * Its `status` (and the microservice's `app.status`) emits the aggregate of its groups' members on each change
 * (groups-status.ts; README "Status").
 */
@Injectable()
export class KafkaGroupsServer
  extends Server<Record<string, Function>, KafkaGroupsStatus>
  implements CustomTransportStrategy, OnModuleDestroy, BeforeApplicationShutdown
{
  override readonly transportId = KAFKA_GROUPS_TRANSPORT;
  protected override readonly logger = new Logger(KafkaGroupsServer.name);

  private runners: GroupRunner[] = [];
  private deadLetters?: DeadLetterPublisher;
  private processingHooksSet = false;
  private stopping?: Promise<void>;
  private readonly observers: MemberObserver[] = [];
  private tracing?: KafkaTracingHooks;
  private lastStatus?: KafkaGroupsStatus;
  private stopped = false;
  private explored = false;

  constructor(
    @Inject(KAFKA_MODULE_OPTIONS) private readonly options: KafkaModuleOptions,
    @Inject(KAFKA_CLIENT) private readonly kafka: Kafka,
    private readonly explorer: KafkaHandlerExplorer,
    private readonly shutdown: KafkaShutdown,
  ) {
    super();
  }

  /**
   * The running groups, for the library's status, health and metrics (applications read KafkaStatusService).
   * @internal
   */
  get groups(): readonly GroupRunner[] {
    return this.runners;
  }

  /** Lets metrics (or your own code) observe every member's messages; add before `listen`. */
  addObserver(observer: MemberObserver): void {
    this.observers.push(observer);
  }

  /** Set by `nest-kafka-groups/tracing` before `listen`: handlers and dead-letter writes then run in spans. */
  useTracing(tracing: KafkaTracingHooks): void {
    this.tracing = tracing;
  }

  /**
   * Nest offers this transport the `@KafkaHandler` methods (bound to its transport id) with a pipeline it built.
   * They are discovered again at `listen` by KafkaHandlerExplorer, where the host module (and so the group) of
   * each is known, and run through a pipeline of this library's (see HandlerPipelineFactory). The base class is not
   * called: it chains handlers that share a pattern, which would make two groups on one topic both run for every
   * message.
   */
  override addHandler(): void {}

  override setOnProcessingStartHook(hook: Parameters<Server['setOnProcessingStartHook']>[0]): void {
    this.processingHooksSet = true;
    super.setOnProcessingStartHook(hook);
  }

  override setOnProcessingEndHook(hook: Parameters<Server['setOnProcessingEndHook']>[0]): void {
    this.processingHooksSet = true;
    super.setOnProcessingEndHook(hook);
  }

  /**
   * Whether `listen` has looked for the handlers: a feature module loaded after it (LazyModuleLoader) would never
   * be served.
   * @internal
   */
  get handlersExplored(): boolean {
    return this.explored;
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    this.explored = true;
    try {
      const plans = planGroups(
        this.options,
        this.explorer.explore((invoke, handlerName) => this.instrument(invoke, handlerName)),
      );
      this.deadLetters = new DeadLetterPublisher(
        this.kafka,
        clientRetryOf(this.options),
        compressionType(this.options.compression),
        securityIdentityOf(this.options),
        this.tracing,
      );
      const consumerKafka = createKafkaClient({
        ...this.options,
        clientRetry: consumerRetryOf(this.options),
      });
      const provisioner = new TopicProvisioner(this.kafka, securityIdentityOf(this.options));
      this.runners = [...plans.values()].map(
        (plan) =>
          new GroupRunner(
            plan,
            {
              // The consumers' own client: connections and group requests with the consumers' shorter retry budget.
              kafka: consumerKafka,
              deadLetters: this.deadLetters!,
              assigners: INTEROP_ASSIGNERS,
              clientRetry: consumerRetryOf(this.options),
              identity: securityIdentityOf(this.options),
              restartBackoff: resolveRestartBackoff(this.options),
              observer: combineObservers(this.observers),
              onStateChange: () => this.publishStatus(),
            },
            provisioner,
          ),
      );
      for (const runner of this.runners) {
        this.logger.log(
          `Group "${runner.groupId}": ${runner.members.length} member(s) on ${quotedTopics(runner.topics)}`,
        );
        // Not awaited: a broker that is down at start must not block the application (the HTTP port opens at
        // once, health says 503); the topics are checked or created, then the members join, each retrying.
        // `autoStart: false` leaves the group to KafkaGroups.start.
        if (runner.plan.settings.autoStart) void runner.start();
      }
      this.publishStatus();
      callback();
    } catch (error) {
      callback(error);
    }
  }

  /** Nest closes modules before the microservice: start draining here, so consumers stop while providers live. */
  onModuleDestroy(): Promise<void> {
    return this.close();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  on(): never {
    throw new Error(
      'KafkaGroupsServer does not support event listeners; use its `status` observable, forFeature({ rebalanceListener }), or the health and status endpoints',
    );
  }

  unwrap<T>(): T {
    return this.kafka as T;
  }

  /** Every group drains and leaves within what is left of `shutdownTimeoutMs`; says once what it waits for. */
  private async stopAll(): Promise<void> {
    const timeout = this.shutdown.remainingMs();
    const members = this.runners.flatMap((runner) => runner.members);
    const inFlight = members.reduce((sum, member) => sum + member.inFlight, 0);
    const joining = members.filter((member) => member.state !== 'joined').length;
    if (members.length > 0) {
      this.logger.log(
        `Stopping: draining ${inFlight} in-flight message(s), leaving ${this.runners.length} group(s)` +
          (joining > 0
            ? ` (${joining} of ${members.length} member(s) not joined: connecting, rebalancing or crashed)`
            : '') +
          `, at most ${timeout} ms`,
      );
    }
    await Promise.all(this.runners.map((runner) => runner.stop(timeout)));
    if (this.deadLetters) {
      await this.shutdown.within('Disconnecting the dead-letter producer', this.deadLetters.disconnect());
    }
    this.stopped = true;
    this.publishStatus();
  }

  /**
   * Emits the groups' aggregate status when it changed. While the server stops, the members' states on the way
   * down are not emitted: `stopped` follows once every group left and the producer disconnected.
   */
  private publishStatus(): void {
    if (this.stopping && !this.stopped) return;
    const status = this.stopped ? 'stopped' : groupsStatus(this.runners);
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    this._status$.next(status);
  }

  /** Nest's processing hooks, then this library's tracing, around each message: each only when it is set. */
  private instrument(invoke: HandlerInvoker, handlerName: string): HandlerInvoker {
    const hooked = this.withProcessingHooks(invoke);
    return this.tracing ? this.tracing.traceHandler(hooked, handlerName) : hooked;
  }

  /** Nest's processing hooks (tracing and the like) around each message, only when something set them. */
  private withProcessingHooks(invoke: HandlerInvoker): HandlerInvoker {
    if (!this.processingHooksSet) return invoke;
    // Settles with the handler's outcome, or with the hook's error when a hook throws or rejects, so the batch
    // never waits on a promise nothing will settle.
    return (data, context) =>
      new Promise<unknown>((resolve) => {
        const run = async (runEndHook: () => void) => {
          try {
            resolve(await invoke(data, context));
          } catch (error) {
            resolve(error);
          } finally {
            runEndHook();
          }
        };
        try {
          Promise.resolve(this.runWithProcessingHooks(context, run)).catch(resolve);
        } catch (hookError) {
          resolve(hookError);
        }
      });
  }
}
