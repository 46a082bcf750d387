import { Logger } from '@nestjs/common';
import { isConnectionError } from '../client/kafkajs.js';
import { authenticationFailureOf, authorizationFailureOf } from '../client/security-failures.js';
import { KafkaAuthenticationError } from '../errors/kafka-authentication.error.js';
import { KafkaMissingTopicError } from '../errors/kafka-missing-topic.error.js';
import { asError } from '../retry/failure-classifier.js';
import type { GroupPlan } from './group-plan.js';
import { ConsumerMember, type ConsumerMemberConfig } from './consumer-member.js';
import { type TopicProvisioner, topicRequirements } from './topic-provisioner.js';

/**
 * One consumer group in this process: its `concurrency` members, started together once the group's topics (and
 * dead-letter topics) exist, and stopped together.
 */
export class GroupRunner {
  readonly members: ConsumerMember[];
  /** Why the members wait: a topic they need does not exist (and is not created); else undefined. */
  startProblem?: string;

  private readonly logger: Logger;
  private lastProblem?: string;
  private stopped = false;
  private wait?: { timer: NodeJS.Timeout; resolve: () => void };

  constructor(
    readonly plan: GroupPlan,
    private readonly memberConfig: Omit<ConsumerMemberConfig, 'group' | 'routes' | 'index'>,
    private readonly provisioner: TopicProvisioner,
  ) {
    this.logger = new Logger(`GroupRunner:${plan.settings.groupId}`);
    this.members = Array.from(
      { length: plan.settings.concurrency },
      (_, index) => new ConsumerMember({ ...memberConfig, group: plan.settings, routes: plan.routes, index }),
    );
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
    let startMembers!: () => void;
    const membersMayStart = new Promise<void>((resolve) => (startMembers = resolve));
    void this.provisionTopics(startMembers);
    await membersMayStart;
    if (this.stopped) return;
    await Promise.all(this.members.map((member) => member.start()));
  }

  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.wait) {
      clearTimeout(this.wait.timer);
      this.wait.resolve();
    }
    await Promise.all(this.members.map((member) => member.stop(timeoutMs)));
  }

  private async provisionTopics(startMembers: () => void): Promise<void> {
    const { initialDelayMs, maxDelayMs } = this.memberConfig.restartBackoff;
    const requirements = topicRequirements(this.plan);
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.provisioner.ensure(this.groupId, requirements);
        startMembers();
        if (this.lastProblem)
          this.logger.log(`Topics ready: ${requirements.map((r) => `"${r.topic}"`).join(', ')}`);
        this.startProblem = this.lastProblem = undefined;
        return;
      } catch (error) {
        const delay = Math.min(initialDelayMs * 2 ** attempt, maxDelayMs);
        const { identity } = this.memberConfig;
        const topics = requirements.map((r) => r.topic);
        const cause =
          authenticationFailureOf(error, identity) ??
          authorizationFailureOf(error, identity, { operation: 'describe or create', topics }) ??
          error;
        const message = asError(cause).message;
        const names = topics.map((t) => `"${t}"`).join(', ');
        const again = `checking again every ${Math.round(maxDelayMs / 1000)} s at most`;
        // Each problem is told once. An unreachable broker and a refused login are told by their own lines; a
        // retriable error (a topic created a moment ago and not yet known to every broker) is expected to pass.
        const missing = cause instanceof KafkaMissingTopicError;
        const reportedElsewhere = isConnectionError(cause) || cause instanceof KafkaAuthenticationError;
        const passing = !reportedElsewhere && (cause as { retriable?: unknown }).retriable === true;
        if (message !== this.lastProblem) {
          if (missing) this.logger.error(`${message}; ${again}`);
          else if (reportedElsewhere || passing) {
            this.logger.debug(`Could not check or create topics ${names}: ${message}; ${again}`);
          } else this.logger.warn(`Could not check or create topics ${names}: ${message}; ${again}`);
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
