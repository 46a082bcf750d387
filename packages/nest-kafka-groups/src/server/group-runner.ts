import type { GroupPlan } from './group-plan.js';
import { ConsumerMember, type ConsumerMemberConfig } from './consumer-member.js';

/** One consumer group in this process: its `concurrency` members, started and stopped together. */
export class GroupRunner {
  readonly members: ConsumerMember[];

  constructor(
    readonly plan: GroupPlan,
    memberConfig: Omit<ConsumerMemberConfig, 'group' | 'routes' | 'index'>,
  ) {
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

  async start(): Promise<void> {
    await Promise.all(this.members.map((member) => member.start()));
  }

  async stop(timeoutMs: number): Promise<void> {
    await Promise.all(this.members.map((member) => member.stop(timeoutMs)));
  }
}
