/**
 * Turns what a scenario observed into its table row. Pure functions, no I/O.
 *
 * Units: a message is a sequence number (the producer's unit, also the record key); a record is a
 * (partition, offset) in the source topic. The producer may write a message twice (a resend after an ack was lost),
 * so a message can have several records.
 */

/** A handler run a consumer worker reported: a `P` line (finished) or an `F` line (threw an injected failure). */
export interface Delivery {
  seq: number;
  partition: number;
  offset: string;
  attempt: number;
  at: number;
  worker: string;
  /** Arrival order among every handler line of the run (ties of `at` are broken by it). */
  order?: number;
}

/** A record of the dead-letter topic: the original partition and offset from its headers, written at `at`. */
export interface DeadLetter {
  seq: number;
  partition: number;
  offset: string;
  at: number;
  /** The value bytes (hex), compared with the source record's when both are known. */
  value?: string;
}

export interface TopicRecord {
  seq: number;
  partition: number;
  offset: string;
  value?: string;
}

/** A fault the scenario injected (recovery is measured from each), or an informational mark. */
export interface FaultEvent {
  label: string;
  at: number;
  /** The workers this event signalled, and how. */
  workers?: string[];
  signal?: NodeJS.Signals;
  /** Informational: no recovery window starts here. */
  info?: boolean;
}

/** A warning, error or log line a worker's Nest Logger wrote (the library's and kafkajs's): evidence. */
export interface LogLine {
  worker: string;
  at: number;
  level: string;
  context: string;
  message: string;
}

/** How a worker the runner sent SIGTERM to ended: `closedAt` is its line printed after `app.close()` resolved. */
export interface GracefulStop {
  worker: string;
  at: number;
  closedAt?: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Observations {
  acked: ReadonlySet<number>;
  records: TopicRecord[];
  /** `P` lines. */
  deliveries: Delivery[];
  /** `F` lines. */
  failures?: Delivery[];
  deadLetters: DeadLetter[];
  expectedDeadLetter: (seq: number) => boolean;
  events: FaultEvent[];
  productionStart: number;
  productionEnd: number;
  /** The partition the producer's partitioner picks for a message, for evidence. */
  partitionOf?: (seq: number) => number;
  /** The workers' log lines (evidence for duplicates). */
  logs?: LogLine[];
  /** Workers stopped with SIGTERM: each must have confirmed its graceful exit. */
  stops?: GracefulStop[];
  /**
   * 'none' (the default): the guarantees promise no record handled twice here, and any is a failure.
   * 'with-evidence': duplicates are allowed (a crash, a broker lost) but each needs evidence in the logs.
   */
  duplicates?: 'none' | 'with-evidence';
  /** Attempts per message, first delivery included, and the handler's injected failures (default: none). */
  maxAttempts?: number;
  failsOn?: (seq: number, attempt: number) => boolean;
  /**
   * Retry topics: the attempt travels with the record (its headers), so any member delivers attempt n + 1 after
   * attempt n failed, on whichever member; without, each member counts its own attempts from 1.
   */
  attemptsInRecords?: boolean;
}

export interface RecoveryWindow {
  label: string;
  seconds: number;
  partition: number | undefined;
}

export interface Row {
  produced: number;
  records: number;
  processed: number;
  /** Records handled (or dead-lettered) again after their first outcome. */
  duplicates: number;
  lost: number;
  deadLettered: number;
  recoverySeconds: number | undefined;
  recovery: RecoveryWindow[];
  /** Why each duplicate happened (from the evidence found), with counts. */
  duplicateReasons: Map<string, number>;
  /** Messages the producer wrote more than once (each copy is a record of its own, handled once each). */
  producerDuplicates: number;
  /** What breaks the delivery contract; the suite fails on any. */
  problems: string[];
}

const key = (partition: number, offset: string) => `${partition}@${offset}`;
const SAMPLE = 10;

function sample<T>(items: T[], show: (item: T) => string): string {
  const shown = items.slice(0, SAMPLE).map(show).join(', ');
  return items.length > SAMPLE ? `${shown}, ...` : shown;
}

/** Records of the source topic that nobody processed or dead-lettered (lost). */
export function recordsWithoutOutcome(o: Pick<Observations, 'records' | 'deliveries' | 'deadLetters'>) {
  const outcomes = new Set([...o.deliveries, ...o.deadLetters].map((d) => key(d.partition, d.offset)));
  return o.records.filter((r) => !outcomes.has(key(r.partition, r.offset)));
}

/**
 * The dead-letter partitions that should hold the dead letters of `lost` records, as the library's
 * SourcePartitionPartitioner picks them: the source partition's number where the dead-letter topic has it, else the
 * key's partition (`keyedPartition`, undefined for a record without a key), else every partition (round-robin).
 */
export function deadLetterPartitionsOf(
  lost: readonly Pick<TopicRecord, 'seq' | 'partition'>[],
  deadLetterPartitions: number,
  keyedPartition: (seq: number) => number | undefined,
): number[] {
  const partitions = new Set<number>();
  for (const { seq, partition } of lost) {
    const keyed = partition < deadLetterPartitions ? partition : keyedPartition(seq);
    if (keyed !== undefined) partitions.add(keyed);
    else for (let p = 0; p < deadLetterPartitions; p++) partitions.add(p);
  }
  return [...partitions].sort((a, b) => a - b);
}

export function analyse(o: Observations): Row {
  const problems: string[] = [];
  const failures = o.failures ?? [];
  const recordAt = new Map(o.records.map((r) => [key(r.partition, r.offset), r]));

  // Lost: a record nobody processed or dead-lettered, or an acknowledged message the topic does not hold.
  const inTopic = new Set<number>();
  const lostRecords = recordsWithoutOutcome(o);
  const seqsPerMessage = new Map<number, number>();
  for (const r of o.records) {
    inTopic.add(r.seq);
    seqsPerMessage.set(r.seq, (seqsPerMessage.get(r.seq) ?? 0) + 1);
  }
  const missingAcked = [...o.acked].filter((seq) => !inTopic.has(seq)).sort((a, b) => a - b);
  const lost = lostRecords.length + missingAcked.length;
  if (lostRecords.length > 0) {
    problems.push(
      `lost: ${lostRecords.length} record(s) neither processed nor dead-lettered, e.g. ` +
        sample(lostRecords, (r) => `seq ${r.seq} at ${r.partition}@${r.offset}`),
    );
  }
  if (missingAcked.length > 0) {
    problems.push(
      `lost: ${missingAcked.length} message(s) the producer's send() resolved for are not in the topic (lost ` +
        'before any consumer could see them): ' +
        sample(missingAcked, (seq) => {
          const partition = o.partitionOf?.(seq);
          return partition === undefined ? `seq ${seq}` : `seq ${seq} (partition ${partition})`;
        }),
    );
  }

  // Wrong record: an outcome for an offset the topic does not hold, or for another message than the one there.
  const phantom: string[] = [];
  const wrong: string[] = [];
  for (const [what, list] of [
    ['handled', [...o.deliveries, ...failures]],
    ['dead-lettered', o.deadLetters],
  ] as const) {
    for (const d of list) {
      const record = recordAt.get(key(d.partition, d.offset));
      if (!record) phantom.push(`${what} ${key(d.partition, d.offset)}`);
      else if (record.seq !== d.seq)
        wrong.push(`${what} seq ${d.seq} as ${key(d.partition, d.offset)}, which holds seq ${record.seq}`);
      else if (
        'value' in d &&
        d.value !== undefined &&
        record.value !== undefined &&
        d.value !== record.value
      )
        wrong.push(`dead letter of ${key(d.partition, d.offset)} does not carry the record's value bytes`);
    }
  }
  if (phantom.length > 0)
    problems.push(`wrong record: outcomes for records not in the topic: ${sample(phantom, String)}`);
  if (wrong.length > 0) problems.push(`wrong record: ${wrong.length} outcome(s): ${sample(wrong, String)}`);

  // Dead letters: exactly the messages the scenario planned to fail for good.
  const processedSeqs = new Set(o.deliveries.map((d) => d.seq));
  const deadSeqs = new Set(o.deadLetters.map((d) => d.seq));
  const wronglyDead = [...deadSeqs].filter((seq) => !o.expectedDeadLetter(seq)).sort((a, b) => a - b);
  if (wronglyDead.length > 0) {
    problems.push(
      `${wronglyDead.length} message(s) dead-lettered that should succeed: seq ${sample(wronglyDead, String)}`,
    );
  }
  const notDead = [...inTopic]
    .filter((seq) => o.expectedDeadLetter(seq) && !deadSeqs.has(seq))
    .sort((a, b) => a - b);
  if (notDead.length > 0) {
    problems.push(
      `${notDead.length} planned failure(s) not in the dead-letter topic: seq ${sample(notDead, String)}`,
    );
  }
  const both = [...deadSeqs].filter((seq) => processedSeqs.has(seq));
  if (both.length > 0)
    problems.push(`${both.length} message(s) both processed and dead-lettered: seq ${sample(both, String)}`);

  problems.push(...checkAttempts(o), ...checkOrder(o), ...checkGracefulStops(o));

  const { duplicates, reasons, unexpected } = explainDuplicates(o);
  problems.push(...unexpected);
  const recovery = recoveryWindows(o);
  return {
    produced: o.acked.size,
    records: o.records.length,
    processed: processedSeqs.size,
    duplicates,
    lost,
    deadLettered: deadSeqs.size,
    recoverySeconds: recovery.length > 0 ? Math.max(...recovery.map((w) => w.seconds)) : undefined,
    recovery,
    duplicateReasons: reasons,
    producerDuplicates: [...seqsPerMessage.values()].filter((n) => n > 1).length,
    problems,
  };
}

/**
 * `ctx.attempt` against the plan: attempts count from 1 without gaps, never beyond `maxAttempts`; a message
 * succeeds on its first attempt the plan does not fail; a dead letter comes after the last attempt failed.
 */
function checkAttempts(o: Observations): string[] {
  const maxAttempts = o.maxAttempts ?? Number.POSITIVE_INFINITY;
  const failsOn = o.failsOn ?? (() => false);
  const firstSuccess = (seq: number) => {
    let attempt = 1;
    while (failsOn(seq, attempt) && attempt <= maxAttempts) attempt++;
    return attempt;
  };
  const failed = new Set(o.failures);
  const runs = new Map<string, Delivery[]>();
  for (const d of [...failed, ...o.deliveries]) {
    const k = key(d.partition, d.offset);
    const list = runs.get(k);
    if (list) list.push(d);
    else runs.set(k, [d]);
  }
  const wrong: string[] = [];
  for (const [where, list] of runs) {
    list.sort(byTime);
    // Counted per member: another member (or this one after a rebalance) may count from 1 again.
    const previousBy = new Map<string, number>();
    // In records: redelivered after a crash, the same attempt may come again, but none before the one it follows.
    const failedSoFar = new Set<number>();
    for (const d of list) {
      const previous = previousBy.get(d.worker) ?? 0;
      const follows = o.attemptsInRecords ? failedSoFar.has(d.attempt - 1) : d.attempt === previous + 1;
      if (d.attempt > maxAttempts) wrong.push(`${where} attempt ${d.attempt} of at most ${maxAttempts}`);
      else if (d.attempt !== 1 && !follows)
        wrong.push(
          o.attemptsInRecords
            ? `${where} attempt ${d.attempt} before attempt ${d.attempt - 1} failed`
            : `${where} attempt ${d.attempt} after attempt ${previous} on ${d.worker}`,
        );
      else if (!failed.has(d) && d.attempt !== firstSuccess(d.seq)) {
        const planned = firstSuccess(d.seq);
        wrong.push(
          `${where} succeeded on attempt ${d.attempt}, ` +
            (planned > maxAttempts ? 'planned to fail every attempt' : `planned on attempt ${planned}`),
        );
      }
      previousBy.set(d.worker, d.attempt);
      if (failed.has(d)) failedSoFar.add(d.attempt);
    }
  }
  for (const d of o.deadLetters) {
    if (!o.failsOn) break;
    const k = key(d.partition, d.offset);
    const attempts = (runs.get(k) ?? []).filter((r) => failed.has(r)).map((r) => r.attempt);
    const last = Math.max(...attempts);
    if (attempts.length > 0 && last !== maxAttempts)
      wrong.push(`${k} dead-lettered after attempt ${last} of ${maxAttempts}`);
  }
  return wrong.length === 0 ? [] : [`wrong attempt: ${wrong.length} case(s): ${sample(wrong, String)}`];
}

/** Per partition, each record is first handled after every record before it (one at a time, in offset order). */
function checkOrder(o: Observations): string[] {
  const first = new Map<number, Map<string, Delivery>>();
  for (const d of [...(o.failures ?? []), ...o.deliveries].sort(byTime)) {
    let partition = first.get(d.partition);
    if (!partition) first.set(d.partition, (partition = new Map()));
    if (!partition.has(d.offset)) partition.set(d.offset, d);
  }
  const wrong: string[] = [];
  for (const [partition, byOffset] of first) {
    const inOffsetOrder = [...byOffset.values()].sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset)));
    for (let i = 1; i < inOffsetOrder.length; i++) {
      const [before, after] = [inOffsetOrder[i - 1], inOffsetOrder[i]];
      if (byTime(after, before) < 0) {
        wrong.push(
          `partition ${partition}: offset ${after.offset} (${after.worker}) before offset ${before.offset} (${before.worker})`,
        );
      }
    }
  }
  return wrong.length === 0 ? [] : [`out of order: ${wrong.length} case(s): ${sample(wrong, String)}`];
}

function byTime(a: Delivery, b: Delivery): number {
  return a.at - b.at || (a.order ?? 0) - (b.order ?? 0);
}

/** A worker stopped with SIGTERM must print its line after `app.close()` resolved, and exit 0. */
function checkGracefulStops(o: Observations): string[] {
  return (o.stops ?? [])
    .filter((s) => s.closedAt === undefined || s.code !== 0)
    .map((s) =>
      s.closedAt === undefined
        ? `no graceful exit: ${s.worker} ended (${s.signal ?? `code ${s.code}`}) without reporting that app.close() resolved`
        : `no graceful exit: ${s.worker} reported app.close() resolved but exited with code ${s.code}`,
    );
}

interface Outcome {
  partition: number;
  offset: string;
  at: number;
  worker?: string;
  deadLetter: boolean;
}

/**
 * Every outcome of a record after its first (processed again, or dead-lettered again), with the evidence for it
 * found in the run: a kill of the member that handled it first, a fault injected into the brokers, a client error
 * that member logged, a rebalance. Without evidence a duplicate always fails; with evidence it fails unless the
 * scenario allows duplicates.
 */
function explainDuplicates(o: Observations): {
  duplicates: number;
  reasons: Map<string, number>;
  unexpected: string[];
} {
  const byRecord = new Map<string, Outcome[]>();
  const add = (outcome: Outcome) => {
    const k = key(outcome.partition, outcome.offset);
    const list = byRecord.get(k);
    if (list) list.push(outcome);
    else byRecord.set(k, [outcome]);
  };
  for (const d of o.deliveries) add({ ...d, deadLetter: false });
  for (const d of o.deadLetters) add({ ...d, deadLetter: true });

  const reasons = new Map<string, number>();
  const unexplained: string[] = [];
  const forbidden: string[] = [];
  let duplicates = 0;
  for (const [where, outcomes] of byRecord) {
    if (outcomes.length < 2) continue;
    outcomes.sort((a, b) => a.at - b.at);
    for (let i = 1; i < outcomes.length; i++) {
      duplicates++;
      const reason = duplicateReason(o, outcomes[i - 1], outcomes[i]);
      const shown = reason ?? 'no evidence in the logs or the fault events';
      reasons.set(shown, (reasons.get(shown) ?? 0) + 1);
      if (reason === undefined) unexplained.push(where);
      else if ((o.duplicates ?? 'none') === 'none') forbidden.push(`${where} (${reason})`);
    }
  }
  const unexpected: string[] = [];
  if (unexplained.length > 0)
    unexpected.push(
      `duplicate: ${unexplained.length} record(s) handled again without evidence of a cause: ${sample(unexplained, String)}`,
    );
  if (forbidden.length > 0)
    unexpected.push(
      `duplicate: ${forbidden.length} record(s) handled again where the guarantees promise none: ${sample(forbidden, String)}`,
    );
  return { duplicates, reasons, unexpected };
}

/**
 * Retry topics: a member killed after a first attempt failed and its record went to the retry topic, but before
 * the offset was committed, leaves the record to be tried (and forwarded) again by the next owner: two chains.
 */
function killedAfterFirstAttempt(o: Observations, again: Outcome): string | undefined {
  for (const f of o.failures ?? []) {
    if (f.attempt !== 1 || f.partition !== again.partition || f.offset !== again.offset || f.at > again.at)
      continue;
    const kill = o.events.find(
      (e) =>
        e.signal === 'SIGKILL' && e.workers?.includes(f.worker ?? '') && e.at >= f.at && e.at <= again.at,
    );
    if (kill)
      return `${f.worker} was killed (SIGKILL) after the first attempt failed, before committing it: two retry chains`;
  }
  return undefined;
}

const REJOINED = /^Joined as |has joined the group/;

/**
 * The failure that started a dead letter's write: the last planned attempt on that record failing on a member
 * before the dead letter's write time. A dead letter names no member, and its write may outlast the member's hold
 * on the partition (a consumer crash while the write retries), so its evidence window opens at that failure.
 */
function deadLetterWriter(o: Observations, dead: Outcome): Delivery | undefined {
  let writer: Delivery | undefined;
  for (const f of o.failures ?? []) {
    if (f.partition !== dead.partition || f.offset !== dead.offset || f.at > dead.at) continue;
    if (o.maxAttempts !== undefined && f.attempt !== o.maxAttempts) continue;
    if (!writer || f.at > writer.at) writer = f;
  }
  return writer;
}

function duplicateReason(o: Observations, first: Outcome, again: Outcome): string | undefined {
  const what = again.deadLetter ? 'dead-lettered again' : 'handled again';
  const writer = first.deadLetter && !first.worker ? deadLetterWriter(o, first) : undefined;
  const firstWorker = first.worker ?? writer?.worker;
  const since = writer?.at ?? first.at;
  const by = firstWorker ?? 'the dead-letter path';
  const between = (at: number) => at >= since && at <= again.at;

  const signalled = o.events.find((e) => firstWorker && e.workers?.includes(firstWorker) && between(e.at));
  // The kill is marked just before the signal is sent: the member may finish a record in between, and it dies
  // without committing that one either (a killed worker's name is never reused).
  const killed = o.events.find(
    (e) => e.signal === 'SIGKILL' && firstWorker && e.workers?.includes(firstWorker) && e.at <= again.at,
  );
  if (killed)
    return `${by} was killed (SIGKILL) before committing it; ${what} by the member that took the partition over`;
  const chain = o.attemptsInRecords ? killedAfterFirstAttempt(o, again) : undefined;
  if (chain) return `${what}: ${chain}`;
  const fault = o.events.find((e) => !e.info && !e.workers && between(e.at));
  if (fault) return `${what} after the fault "${fault.label}"`;
  const clientError = o.logs?.find((l) => l.worker === firstWorker && isClientError(l) && between(l.at));
  if (clientError) {
    // Without its details (addresses, JSON extras), so that one cause is one line of the report.
    const message = clientError.message.replace(/ \{.*$/, '').replace(/(\d+\.){3}\d+:\d+/g, '<broker>');
    return `${what}: ${by} logged "${message.slice(0, 100)}" (${clientError.context})`;
  }
  if (signalled?.signal === 'SIGTERM') return `${what} after ${by}'s graceful shutdown (SIGTERM)`;
  const rejoin = o.logs?.find((l) => REJOINED.test(l.message) && between(l.at));
  if (rejoin) return `${what} after a rebalance (${rejoin.worker} joined)`;
  const handled = again.deadLetter && !again.worker ? deadLetterWriter(o, again) : again;
  const taker = handled?.worker ? staleOwnerOf(o, handled.worker, again.partition, handled.at) : undefined;
  if (taker)
    return `${what} by ${handled?.worker} on an older generation's assignment: ${taker.worker} joined with the partition after ${handled?.worker}'s last join (its commits are refused)`;
  return undefined;
}

const ASSIGNED = /^Joined as \S+, assigned (\{.*\})$/;

/**
 * A member that lost the group without knowing it (its coordinator unreachable) goes on with its old assignment
 * until its consumer fails; Kafka refuses its commits, so what it handles meanwhile is handled twice. Evidence: a
 * later join of another member that assigned it the partition, with no join of this member since.
 */
function staleOwnerOf(o: Observations, worker: string, partition: number, at: number): LogLine | undefined {
  let ownJoin = Number.NEGATIVE_INFINITY;
  let taker: LogLine | undefined;
  for (const line of o.logs ?? []) {
    if (line.at > at) continue;
    const assigned = ASSIGNED.exec(line.message);
    if (!assigned) continue;
    if (line.worker === worker) ownJoin = Math.max(ownJoin, line.at);
    else if (
      Object.values(JSON.parse(assigned[1]) as Record<string, number[]>).some((p) => p.includes(partition))
    )
      if (!taker || line.at > taker.at) taker = line;
  }
  return taker && taker.at > ownJoin ? taker : undefined;
}

/**
 * A kafkajs error, retried error or protocol trouble, or the member reporting its consumer's trouble; never a
 * handler's failure, and never a routine line (joined, started).
 */
const CLIENT_TROUBLE =
  /^(Crash: |Response |Restarting the consumer|The group is rebalancing|The coordinator is not aware)|Connection (error|timeout|closed)|ECONN|ETIMEDOUT|[Rr]etr(y|ied|ying)/;
const MEMBER_TROUBLE = /^Consumer (on .+ )?(crashed|stopped)|^Shutdown timed out|^Disconnect failed/;

function isClientError(line: LogLine): boolean {
  if (line.context.startsWith('kafkajs'))
    return line.level === 'error' || line.level === 'warn' || CLIENT_TROUBLE.test(line.message);
  return MEMBER_TROUBLE.test(line.message);
}

/**
 * Recovery of each injected fault: the longest time, counted from the fault, that any partition waited for its
 * next progress (a message processed or dead-lettered) while the producer was still sending. Without a fault
 * (handler exceptions, poison pills) the window is the whole production, and it measures the longest stall a
 * failing message caused.
 */
function recoveryWindows(o: Observations): RecoveryWindow[] {
  const progress = new Map<number, number[]>();
  for (const d of [...o.deliveries, ...o.deadLetters]) {
    const list = progress.get(d.partition);
    if (list) list.push(d.at);
    else progress.set(d.partition, [d.at]);
  }
  for (const list of progress.values()) list.sort((a, b) => a - b);

  const faults = o.events.filter((e) => !e.info);
  const windows =
    faults.length > 0
      ? faults.map((fault, i) => ({
          label: fault.label,
          from: fault.at,
          until: faults[i + 1]?.at ?? o.productionEnd,
        }))
      : [
          {
            label: 'longest stall of a partition during production',
            from: o.productionStart,
            until: o.productionEnd,
          },
        ];

  return windows.map(({ label, from, until }) => {
    let worst = 0;
    let worstPartition: number | undefined;
    for (const [partition, times] of progress) {
      let previous = from;
      for (const at of times) {
        if (at <= from) continue;
        if (previous >= until) break;
        const gap = at - Math.max(previous, from);
        if (gap > worst) {
          worst = gap;
          worstPartition = partition;
        }
        previous = at;
      }
    }
    return { label, seconds: worst / 1000, partition: worstPartition };
  });
}

/** Seconds from `from` until every partition had progress again (for informational marks such as "broker back"). */
export function resumedAfter(
  o: Pick<Observations, 'deliveries' | 'deadLetters'>,
  from: number,
): number | undefined {
  const first = new Map<number, number>();
  for (const d of [...o.deliveries, ...o.deadLetters]) {
    if (d.at < from) continue;
    const seen = first.get(d.partition);
    if (seen === undefined || d.at < seen) first.set(d.partition, d.at);
  }
  return first.size === 0 ? undefined : (Math.max(...first.values()) - from) / 1000;
}
