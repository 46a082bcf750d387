import { Logger } from '@nestjs/common';
import { isConnectionError } from '../client/kafkajs.js';
import { authenticationFailureOf, authorizationFailureOf } from '../client/security-failures.js';
import { KafkaAuthenticationError } from '../errors/kafka-authentication.error.js';
import { KafkaAuthorizationError } from '../errors/kafka-authorization.error.js';
import { KafkaMissingTopicError } from '../errors/kafka-missing-topic.error.js';
import { asError } from '../retry/failure-classifier.js';
import type { GroupPlan } from './group-plan.js';
import { ConsumerMember, type ConsumerMemberConfig } from './consumer-member.js';
import { type TopicProvisioner, topicRequirements } from './topic-provisioner.js';
import { quotedTopics } from '../errors/topic-names.js';

/**
 * One consumer group in this process: its `concurrency` members, started together once the group's topics (and
 * dead-letter topics) exist, and stopped together: at shutdown (`close`), or stopped and started again at run
 * time (`halt`, `start`, see KafkaGroups), one transition at a time.
 */
export class GroupRunner {
  readonly members: ConsumerMember[];
  /** Why the members wait: a topic they need does not exist (and is not created); else undefined. */
  startProblem?: string;
  /** Topics the application paused; each member pauses them again after every join. */
  readonly pausedTopics = new Set<string>();
  /** The members were started and not stopped since (they may still be joining or recovering). */
  running = false;
  /** The application is shutting down: the group stays stopped. */
  closed = false;

  private readonly logger: Logger;
  private lastProblem?: string;
  /** Bumped by every start and stop: a topic check of an earlier start ends and starts nothing. */
  private session = 0;
  private wait?: { timer: NodeJS.Timeout; resolve: () => void };
  private transition: Promise<unknown> = Promise.resolve();

  constructor(
    readonly plan: GroupPlan,
    private readonly memberConfig: Omit<
      ConsumerMemberConfig,
      'group' | 'routes' | 'index' | 'pausedTopics' | 'rebalanceListeners'
    >,
    private readonly provisioner: TopicProvisioner,
  ) {
    this.logger = new Logger(`GroupRunner:${plan.settings.groupId}`);
    this.members = Array.from(
      { length: plan.settings.concurrency },
      (_, index) =>
        new ConsumerMember({
          ...memberConfig,
          group: plan.settings,
          routes: plan.routes,
          index,
          pausedTopics: this.pausedTopics,
          rebalanceListeners: plan.rebalanceListeners,
        }),
    );
    // Shown as stopped (not as joining) until the application starts the group.
    if (!plan.settings.autoStart) for (const member of this.members) member.state = 'stopped';
  }

  /**
   * Runs `step` after the transitions queued before it (start, stop, seek), so two never interleave; a failed
   * step does not block the next.
   */
  serially<T>(step: () => Promise<T>): Promise<T> {
    const next = this.transition.then(step);
    this.transition = next.catch(() => undefined);
    return next;
  }

  get groupId(): string {
    return this.plan.settings.groupId;
  }

  get topics(): string[] {
    return [...this.plan.routes.keys()];
  }

  /**
   * Never throws. The members start once the topics are known to exist (created or checked). A missing topic keeps
   * them waiting; any other failure to check (a broker that does not answer, a refused login) starts them anyway,
   * since they retry and report such failures themselves, while the topics are checked again in the background.
   */
  async start(): Promise<void> {
    if (this.closed || this.running) return;
    this.running = true;
    const session = ++this.session;
    let startMembers!: () => void;
    const membersMayStart = new Promise<void>((resolve) => (startMembers = resolve));
    void this.provisionTopics(startMembers, session);
    await membersMayStart;
    if (session !== this.session) return;
    await Promise.all(this.members.map((member) => member.restart()));
  }

  /** Stops the members (each drains, commits and leaves the group) until `start` is called again. */
  async halt(timeoutMs: number): Promise<void> {
    this.running = false;
    this.session++;
    this.startProblem = undefined;
    this.wakeUp();
    this.provisioner.cancel(this.groupId);
    await Promise.all(this.members.map((member) => member.stop(timeoutMs)));
  }

  /** Shutdown: stops the members for good. */
  async stop(timeoutMs: number): Promise<void> {
    this.closed = true;
    await this.halt(timeoutMs);
  }

  /** Pauses the topics and the retry topics of the handlers they belong to; returns every topic paused. */
  pause(topics: readonly string[]): string[] {
    const chosen = this.withRetryTopics(topics);
    for (const topic of chosen) this.pausedTopics.add(topic);
    for (const member of this.members) member.pauseTopics(chosen);
    return chosen;
  }

  /** Undoes `pause` for the topics and their handlers' retry topics; returns every topic resumed. */
  resume(topics: readonly string[]): string[] {
    const chosen = this.withRetryTopics(topics);
    for (const topic of chosen) this.pausedTopics.delete(topic);
    for (const member of this.members) member.resumeTopics(chosen);
    return chosen;
  }

  /**
   * A handler's topic stands for its whole retry chain: a paused handler must not go on with the retries of what
   * it failed before the pause (a downstream outage would burn their attempts into the dead-letter topic). A retry
   * topic named by itself is just that topic.
   */
  private withRetryTopics(topics: readonly string[]): string[] {
    const chosen = new Set(topics);
    for (const topic of topics) {
      const route = this.plan.routes.get(topic);
      if (route?.retryTopics && !route.isRetryTopic)
        for (const retry of route.retryTopics.topics) chosen.add(retry);
    }
    return [...chosen];
  }

  private wakeUp(): void {
    if (this.wait) {
      clearTimeout(this.wait.timer);
      this.wait.resolve();
    }
  }

  private async provisionTopics(startMembers: () => void, session: number): Promise<void> {
    const { initialDelayMs, maxDelayMs } = this.memberConfig.restartBackoff;
    const requirements = topicRequirements(this.plan);
    for (let attempt = 0; session === this.session; attempt++) {
      try {
        await this.provisioner.ensure(this.groupId, requirements);
        startMembers();
        if (this.lastProblem)
          this.logger.log(`Topics ready: ${quotedTopics(requirements.map((r) => r.topic))}`);
        this.startProblem = this.lastProblem = undefined;
        return;
      } catch (error) {
        // A stop cancelled the pass: nothing to report.
        if (session !== this.session) break;
        const delay = Math.min(initialDelayMs * 2 ** attempt, maxDelayMs);
        const { identity } = this.memberConfig;
        const topics = requirements.map((r) => r.topic);
        const cause =
          authenticationFailureOf(error, identity) ??
          authorizationFailureOf(error, identity, { operation: 'describe or create', topics }) ??
          error;
        const message = asError(cause).message;
        const again = `checking again every ${Math.round(maxDelayMs / 1000)} s at most`;
        // Each problem is told once. An unreachable broker and a refused login are told by their own lines; a
        // retriable error (a topic created a moment ago and not yet known to every broker) is expected to pass.
        const missing = cause instanceof KafkaMissingTopicError;
        // A refusal the provisioner named itself names the topics refused, not every topic of the group.
        const what =
          error instanceof KafkaAuthorizationError
            ? 'Topic check refused'
            : `Could not check or create topics ${quotedTopics(topics)}`;
        const reportedElsewhere = isConnectionError(cause) || cause instanceof KafkaAuthenticationError;
        const passing = !reportedElsewhere && (cause as { retriable?: unknown }).retriable === true;
        if (message !== this.lastProblem) {
          if (missing) this.logger.error(`${message}; ${again}`);
          else if (reportedElsewhere || passing) {
            this.logger.debug(`${what}: ${message}; ${again}`);
          } else this.logger.warn(`${what}: ${message}; ${again}`);
        }
        this.lastProblem = message;
        this.startProblem = missing ? message : undefined;
        if (!missing && !passing) startMembers();
        await new Promise<void>((resolve) => (this.wait = { timer: setTimeout(resolve, delay), resolve }));
        this.wait = undefined;
      }
    }
    startMembers();
  }
}
