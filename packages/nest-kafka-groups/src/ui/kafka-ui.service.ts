import {
  Inject,
  Injectable,
  Logger,
  type MessageEvent,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { concat, defer, filter, map, Observable, of, Subject } from 'rxjs';
import { KAFKA_MODULE_OPTIONS } from '../kafka.constants.js';
import type { KafkaModuleOptions } from '../kafka.options.js';
import type { GroupRunner } from '../server/group-runner.js';
import { KafkaStatusService } from '../status/kafka-status.service.js';
import { connectionSecrets, groupView, RateMeter, redactSecrets, type UiGroupView } from './group-view.js';
import { KAFKA_UI_OPTIONS, type ResolvedKafkaUiOptions } from './kafka-ui.options.js';
import { LagHistory, type LagPoint } from './lag-history.js';

/** What one server-sent event carries: the state of the groups at `at`. */
export interface KafkaUiSnapshot {
  at: number;
  sampleIntervalMs: number;
  historyMs: number;
  groups: UiGroupView[];
  /** Lag points per group and "topic:partition": the whole history in the first event, none in later ones. */
  history?: Record<string, Record<string, LagPoint[]>>;
}

/**
 * Samples every consumer group of this process on an interval (its members here, and from the broker, with one
 * admin round trip per group, the coordinator's view: state, every member, offsets and lag), keeps a bounded lag
 * history, and pushes each sample to the page's event streams. Connection secrets are removed from all it emits.
 */
@Injectable()
export class KafkaUiService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(KafkaUiService.name);
  private readonly history: LagHistory;
  private readonly rates = new RateMeter();
  private readonly secrets: string[];
  private readonly samples = new Subject<Map<string, UiGroupView>>();
  private latest?: { at: number; groups: Map<string, UiGroupView> };
  private timer?: NodeJS.Timeout;
  private sampling?: Promise<void>;
  private shuttingDown = false;

  constructor(
    private readonly status: KafkaStatusService,
    @Inject(KAFKA_UI_OPTIONS) private readonly options: ResolvedKafkaUiOptions,
    @Inject(KAFKA_MODULE_OPTIONS) private readonly kafkaOptions: KafkaModuleOptions,
  ) {
    this.history = new LagHistory(options.historyMs, options.sampleIntervalMs);
    this.secrets = connectionSecrets(kafkaOptions);
  }

  /** The application is shutting down: streams end, new ones are refused, sampling stopped. */
  get closed(): boolean {
    return this.shuttingDown;
  }

  onApplicationBootstrap(): void {
    if (this.closed) return;
    this.timer = setInterval(() => this.tick(), this.options.sampleIntervalMs);
    this.timer.unref();
    this.tick();
  }

  /**
   * Stops sampling and ends every event stream, so the HTTP server can close. A sample in flight is not waited for:
   * its result is dropped, and its admin call ends when the admin client shuts down.
   */
  onModuleDestroy(): void {
    this.shuttingDown = true;
    clearInterval(this.timer);
    this.samples.complete();
  }

  /** Whether a group of that id runs in this process. */
  has(groupId: string): boolean {
    return this.status.runners.some((runner) => runner.groupId === groupId);
  }

  /**
   * Server-sent events of the groups (or of one group): the latest sample with the lag history at once, then each
   * new sample. Ends when the application closes.
   */
  events(groupId?: string): Observable<MessageEvent> {
    const wanted = (id: string) => groupId === undefined || id === groupId;
    const pick = (groups: Map<string, UiGroupView>) => [...groups.values()].filter((g) => wanted(g.groupId));
    const first = defer(() => {
      if (this.closed) return of();
      const history: KafkaUiSnapshot['history'] = {};
      for (const runner of this.status.runners) {
        if (wanted(runner.groupId)) history[runner.groupId] = this.history.of(runner.groupId);
      }
      const groups = this.latest ? pick(this.latest.groups) : [];
      return of(this.event({ at: this.latest?.at ?? Date.now(), groups, history }));
    });
    const later = this.samples.pipe(
      map((groups) => pick(groups)),
      filter((groups) => groups.length > 0 || groupId === undefined),
      map((groups) => this.event({ at: this.latest!.at, groups })),
    );
    return concat(first, later);
  }

  private event(snapshot: Omit<KafkaUiSnapshot, 'sampleIntervalMs' | 'historyMs'>): MessageEvent {
    const { sampleIntervalMs, historyMs } = this.options;
    return { data: redactSecrets({ ...snapshot, sampleIntervalMs, historyMs }, this.secrets) };
  }

  private tick(): void {
    // A broker slower than the interval: skip this round rather than pile up admin calls.
    if (this.sampling || this.closed) return;
    this.sampling = this.sample()
      .catch((error: unknown) => this.logger.warn(`Sampling the consumer groups failed: ${String(error)}`))
      .finally(() => (this.sampling = undefined));
  }

  private async sample(): Promise<void> {
    const runners = this.status.runners;
    const views = await Promise.all(runners.map((runner) => this.sampleGroup(runner)));
    if (this.closed) return;
    const at = Date.now();
    const groups = new Map(views.map((view) => [view.groupId, view]));
    for (const view of views) {
      if (view.error !== null) continue;
      this.history.record(
        view.groupId,
        at,
        view.partitions.map((p) => ({ topic: p.topic, partition: p.partition, lag: p.lag! })),
      );
    }
    this.history.retain(new Set(groups.keys()));
    this.rates.sweep(new Set(runners.flatMap((runner) => runner.members)));
    this.latest = { at, groups };
    this.samples.next(groups);
  }

  private async sampleGroup(runner: GroupRunner): Promise<UiGroupView> {
    const offsets = await this.status.offsets(runner.groupId, runner.topics).catch((error: unknown) => ({
      error: error instanceof Error ? error.message : String(error),
    }));
    const at = Date.now();
    const statuses = this.status.localMembers(runner);
    const members = runner.members.map((member, i) => ({
      member: { ...statuses[i], pausedPartitions: member.pausedPartitions() },
      rates: this.rates.measure(member, at, member.counts),
    }));
    return groupView({
      groupId: runner.groupId,
      topics: runner.topics,
      startProblem: runner.startProblem,
      clientId: this.kafkaOptions.clientId ?? null,
      members,
      offsets,
    });
  }
}
