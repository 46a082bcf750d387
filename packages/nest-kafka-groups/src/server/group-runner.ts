import { Logger } from '@nestjs/common';
import { isConnectionError } from '../client/kafkajs.js';
import { KafkaMissingTopicError } from '../errors/kafka-missing-topic.error.js';
import type { KafkaRestartBackoff } from '../kafka.options.js';
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
  /** Why the members have not been started yet (a missing topic, a broker that does not answer); else undefined. */
  startProblem?: string;

  private readonly logger: Logger;
  private stopped = false;
  private wait?: { timer: NodeJS.Timeout; resolve: () => void };

  constructor(
    readonly plan: GroupPlan,
    memberConfig: Omit<ConsumerMemberConfig, 'group' | 'routes' | 'index'>,
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

  /** Never throws: waits (with backoff) until the topics exist, then starts the members, which retry by themselves. */
  async start(): Promise<void> {
    await this.provisionTopics(this.members[0].restartBackoff);
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

  private async provisionTopics({ initialDelayMs, maxDelayMs }: KafkaRestartBackoff): Promise<void> {
    const requirements = topicRequirements(this.plan);
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.provisioner.ensure(this.groupId, requirements);
        if (this.startProblem)
          this.logger.log(`Topics ready: ${requirements.map((r) => `"${r.topic}"`).join(', ')}`);
        this.startProblem = undefined;
        return;
      } catch (error) {
        const delay = Math.min(initialDelayMs * 2 ** attempt, maxDelayMs);
        const message = asError(error).message;
        const names = requirements.map((r) => `"${r.topic}"`).join(', ');
        // Each problem is told once. An unreachable broker is told by the broker connectivity lines; a retriable
        // error (a topic created a moment ago and not yet known to every broker) is expected to pass.
        if (message !== this.startProblem) {
          const line = `topics ${names}: ${message}; checking again every ${Math.round(maxDelayMs / 1000)} s at most`;
          if (error instanceof KafkaMissingTopicError)
            this.logger.error(`${message}; checking again every ${Math.round(maxDelayMs / 1000)} s at most`);
          else if (isConnectionError(error) || (error as { retriable?: unknown }).retriable === true) {
            this.logger.debug(`Could not check or create ${line}`);
          } else this.logger.warn(`Could not check or create ${line}`);
        }
        this.startProblem =
          error instanceof KafkaMissingTopicError ? message : `topics ${names} not checked yet: ${message}`;
        await new Promise<void>((resolve) => (this.wait = { timer: setTimeout(resolve, delay), resolve }));
        this.wait = undefined;
      }
    }
  }
}
