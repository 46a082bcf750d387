import { Logger } from '@nestjs/common';

/** How often an outage that goes on is reported again (as the broker connectivity lines). */
export const COORDINATOR_OUTAGE_SUMMARY_EVERY_MS = 30_000;

/** Who the member is and which coordinator it talks to, read when a line is written. */
export interface CoordinatorOutageSubject {
  groupId: string;
  memberId: string | null | undefined;
  /** `broker <id> at <host:port>`: the coordinator the member last knew. */
  coordinator: string;
  sessionTimeout: number;
}

type OutageLogger = Pick<Logger, 'warn' | 'log'>;

/**
 * What a member's group coordinator has not done for it: heartbeats unanswered (the coordinator died, moved, or
 * cannot be found) and commits failing with the coordinator lost or unavailable. The runner recovers from both on
 * its own, as the Java consumer does (it keeps fetching and looks the coordinator up again), and says nothing above
 * debug: without this, a member whose coordinator stayed away handed no records to its handlers from the session
 * timeout on, committed nothing, and health reported it joined. Here:
 * - one WARN once it lasted half the session timeout (before the member stops handing records over), naming the
 *   group, the member and the coordinator, then a summary every 30 s while it lasts, and one line when it ends;
 * - `problem()` for health once it lasted a whole session timeout.
 * Driven by the heartbeat and commit answers (a few per second at most), never per message.
 */
export class CoordinatorOutage {
  /** When the coordinator last answered a heartbeat (or the join), while heartbeats fail. */
  heartbeatsFailingSince: number | undefined;
  /** When the first of the commits failing in a row failed. */
  commitsFailingSince: number | undefined;
  failedHeartbeats = 0;
  failedCommits = 0;
  lastError = '';
  /** When the outage was last reported (its WARN or a summary); undefined before the first. */
  reportedAt: number | undefined;
  /** When the reported outage began. */
  reportedSince: number | undefined;

  constructor(
    private readonly subject: () => CoordinatorOutageSubject,
    private readonly logger: OutageLogger = new Logger('KafkaGroupCoordinator'),
    private readonly summaryEveryMs = COORDINATOR_OUTAGE_SUMMARY_EVERY_MS,
  ) {}

  /** A heartbeat failed with the coordinator lost or unavailable; `lastAnsweredAt`: its last answer (epoch ms). */
  heartbeatFailed(error: unknown, lastAnsweredAt: number, now = Date.now()): void {
    this.heartbeatsFailingSince ??= lastAnsweredAt;
    this.failedHeartbeats++;
    this.failed(error, now);
  }

  /** An interval commit failed with the coordinator lost or unavailable (its offsets go with the next one). */
  commitFailed(error: unknown, now = Date.now()): void {
    this.commitsFailingSince ??= now;
    this.failedCommits++;
    this.failed(error, now);
  }

  heartbeatAnswered(now = Date.now()): void {
    if (this.heartbeatsFailingSince === undefined) return;
    this.heartbeatsFailingSince = undefined;
    this.answered(now);
  }

  commitSucceeded(now = Date.now()): void {
    if (this.commitsFailingSince === undefined) return;
    this.commitsFailingSince = undefined;
    this.answered(now);
  }

  /** For health: why the member does not work normally, once the outage lasted a session timeout. */
  problem(now = Date.now()): string | undefined {
    const since = this.since();
    if (since === undefined) return undefined;
    const { coordinator, sessionTimeout } = this.subject();
    if (now - since < sessionTimeout) return undefined;
    const lasting = seconds(now - since);
    const what =
      this.heartbeatsFailingSince !== undefined
        ? `the group coordinator (${coordinator}) has not answered for ${lasting} s, longer than the session ` +
          `timeout (${sessionTimeout} ms): no record is handed to the handlers until it answers, and nothing is committed`
        : `commits to the group coordinator (${coordinator}) have failed for ${lasting} s`;
    return `${what} (last: ${this.lastError})`;
  }

  private since(): number | undefined {
    const { heartbeatsFailingSince: heartbeats, commitsFailingSince: commits } = this;
    if (heartbeats === undefined) return commits;
    return commits === undefined ? heartbeats : Math.min(heartbeats, commits);
  }

  private failed(error: unknown, now: number): void {
    this.lastError = (error as Error | undefined)?.message ?? String(error);
    const since = this.since()!;
    const subject = this.subject();
    if (this.reportedAt === undefined) {
      if (now - since < subject.sessionTimeout / 2) return;
      this.reportedAt = now;
      this.reportedSince = since;
      const holdBack =
        this.heartbeatsFailingSince === undefined
          ? ''
          : `; from ${subject.sessionTimeout} ms without an answer (sessionTimeout) no record is handed to the ` +
            'handlers until it answers';
      this.logger.warn(
        `${who(subject)}: the group coordinator (${subject.coordinator}) ${this.failing()} for ` +
          `${seconds(now - since)} s (${this.counts()}, last: ${this.lastError}); the member keeps trying, ` +
          `and the offsets handled since the last commit are redelivered if this process stops first${holdBack}`,
      );
    } else if (now - this.reportedAt >= this.summaryEveryMs) {
      this.reportedAt = now;
      this.logger.warn(
        `${who(subject)}: the group coordinator (${subject.coordinator}) still ${this.failing()} after ` +
          `${seconds(now - since)} s (${this.counts()}, last: ${this.lastError})`,
      );
    }
  }

  private answered(now: number): void {
    // Both must answer again: a coordinator that answers heartbeats may still fail every commit.
    if (this.since() !== undefined) return;
    const { reportedSince } = this;
    const counts = this.counts();
    this.failedHeartbeats = 0;
    this.failedCommits = 0;
    this.reportedAt = undefined;
    this.reportedSince = undefined;
    // A short outage (a coordinator that moved and was found again) was never reported: nothing to close.
    if (reportedSince === undefined) return;
    const subject = this.subject();
    this.logger.log(
      `${who(subject)}: the group coordinator (${subject.coordinator}) answers again after ` +
        `${seconds(now - reportedSince)} s (${counts}); commits and handling resume`,
    );
  }

  private failing(): string {
    return this.heartbeatsFailingSince === undefined ? 'has failed every commit' : 'has not answered';
  }

  private counts(): string {
    return `${this.failedHeartbeats} heartbeat(s) and ${this.failedCommits} commit(s) failed`;
  }
}

function who({ groupId, memberId }: CoordinatorOutageSubject): string {
  return `Group "${groupId}" member ${memberId ?? '(not joined)'}`;
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
