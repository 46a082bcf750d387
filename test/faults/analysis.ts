/**
 * Turns what a scenario observed into its table row. Pure functions, no I/O.
 *
 * Units: a message is a sequence number (the producer's unit, also the record key); a record is a
 * (partition, offset) in the source topic. The producer may write a message twice (a resend after an ack was lost),
 * so a message can have several records.
 */

/** A handler that finished successfully (a `P` line of a consumer worker). */
export interface Delivery {
  seq: number;
  partition: number;
  offset: string;
  attempt: number;
  at: number;
  worker: string;
}

/** A record of the dead-letter topic: the original partition and offset from its headers, written at `at`. */
export interface DeadLetter {
  seq: number;
  partition: number;
  offset: string;
  at: number;
}

export interface TopicRecord {
  seq: number;
  partition: number;
  offset: string;
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

export interface Observations {
  acked: ReadonlySet<number>;
  records: TopicRecord[];
  deliveries: Delivery[];
  deadLetters: DeadLetter[];
  expectedDeadLetter: (seq: number) => boolean;
  events: FaultEvent[];
  productionStart: number;
  productionEnd: number;
  /** The partition the producer's partitioner picks for a message, for evidence. */
  partitionOf?: (seq: number) => number;
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
  duplicates: number;
  lost: number;
  deadLettered: number;
  recoverySeconds: number | undefined;
  recovery: RecoveryWindow[];
  /** Why each duplicate happened, with counts. */
  duplicateReasons: Map<string, number>;
  /** Messages the producer wrote more than once (each copy is a record of its own). */
  producerDuplicates: number;
  /** What breaks the delivery contract; the suite fails on any. */
  problems: string[];
}

const key = (partition: number, offset: string) => `${partition}@${offset}`;

export function analyse(o: Observations): Row {
  const problems: string[] = [];

  // Outcomes per record: successful handler runs and dead-letter writes.
  const outcomesByRecord = new Map<string, number>();
  for (const d of [...o.deliveries, ...o.deadLetters]) {
    const k = key(d.partition, d.offset);
    outcomesByRecord.set(k, (outcomesByRecord.get(k) ?? 0) + 1);
  }

  // Lost: a record nobody processed or dead-lettered, or an acknowledged message the topic does not hold.
  const inTopic = new Set<number>();
  const lostRecords: TopicRecord[] = [];
  const seqsPerMessage = new Map<number, number>();
  for (const r of o.records) {
    inTopic.add(r.seq);
    seqsPerMessage.set(r.seq, (seqsPerMessage.get(r.seq) ?? 0) + 1);
    if (!outcomesByRecord.has(key(r.partition, r.offset))) lostRecords.push(r);
  }
  const missingAcked = [...o.acked].filter((seq) => !inTopic.has(seq)).sort((a, b) => a - b);
  const lost = lostRecords.length + missingAcked.length;
  if (lostRecords.length > 0) {
    const sample = lostRecords.slice(0, 10).map((r) => `seq ${r.seq} at ${r.partition}@${r.offset}`);
    problems.push(
      `${lostRecords.length} record(s) neither processed nor dead-lettered, e.g. ${sample.join(', ')}`,
    );
  }
  if (missingAcked.length > 0) {
    const sample = missingAcked.slice(0, 10).map((seq) => {
      const partition = o.partitionOf?.(seq);
      return partition === undefined ? `seq ${seq}` : `seq ${seq} (partition ${partition})`;
    });
    problems.push(
      `${missingAcked.length} message(s) the producer's send() resolved for are not in the topic (lost before any ` +
        `consumer could see them): ${sample.join(', ')}`,
    );
  }
  const known = new Set(o.records.map((r) => key(r.partition, r.offset)));
  const phantom = [...outcomesByRecord.keys()].filter((k) => !known.has(k));
  if (phantom.length > 0)
    problems.push(`outcomes for records not in the topic: ${phantom.slice(0, 10).join(', ')}`);

  // Dead letters: exactly the messages the scenario planned to fail for good.
  const processedSeqs = new Set(o.deliveries.map((d) => d.seq));
  const deadSeqs = new Set(o.deadLetters.map((d) => d.seq));
  const wronglyDead = [...deadSeqs].filter((seq) => !o.expectedDeadLetter(seq)).sort((a, b) => a - b);
  if (wronglyDead.length > 0) {
    problems.push(
      `${wronglyDead.length} message(s) dead-lettered that should succeed: seq ${wronglyDead.slice(0, 10).join(', ')}`,
    );
  }
  const notDead = [...inTopic]
    .filter((seq) => o.expectedDeadLetter(seq) && !deadSeqs.has(seq))
    .sort((a, b) => a - b);
  if (notDead.length > 0) {
    problems.push(
      `${notDead.length} planned failure(s) not in the dead-letter topic: seq ${notDead.slice(0, 10).join(', ')}`,
    );
  }
  const both = [...deadSeqs].filter((seq) => processedSeqs.has(seq));
  if (both.length > 0)
    problems.push(
      `${both.length} message(s) both processed and dead-lettered: seq ${both.slice(0, 10).join(', ')}`,
    );

  const { duplicates, reasons } = explainDuplicates(o);
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

interface Outcome {
  partition: number;
  offset: string;
  at: number;
  worker?: string;
  deadLetter: boolean;
}

/** Every outcome after a message's first (processed again, or dead-lettered again), with the reason for each. */
function explainDuplicates(o: Observations): { duplicates: number; reasons: Map<string, number> } {
  const bySeq = new Map<number, Outcome[]>();
  const add = (seq: number, outcome: Outcome) => {
    const list = bySeq.get(seq);
    if (list) list.push(outcome);
    else bySeq.set(seq, [outcome]);
  };
  for (const d of o.deliveries) add(d.seq, { ...d, deadLetter: false });
  for (const d of o.deadLetters) add(d.seq, { ...d, deadLetter: true });

  const reasons = new Map<string, number>();
  let duplicates = 0;
  for (const outcomes of bySeq.values()) {
    if (outcomes.length < 2) continue;
    outcomes.sort((a, b) => a.at - b.at);
    for (let i = 1; i < outcomes.length; i++) {
      duplicates++;
      const reason = duplicateReason(o, outcomes[i - 1], outcomes[i]);
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }
  }
  return { duplicates, reasons };
}

function duplicateReason(o: Observations, first: Outcome, again: Outcome): string {
  if (first.partition !== again.partition || first.offset !== again.offset) {
    return 'the producer wrote the message twice (a batch sent again after a failed send): two records, each handled once';
  }
  const what = again.deadLetter ? 'dead-lettered again' : 'handled again';
  const by = first.worker ?? 'the dead-letter path';
  // A signalled worker handled nothing after it died, so its own earlier work is what the signal left uncommitted.
  const signalled = o.events.find((e) => first.worker && e.workers?.includes(first.worker));
  if (signalled?.signal === 'SIGKILL') {
    return `handled by ${by} shortly before its SIGKILL, offset not committed yet; ${what} by the member that took the partition over`;
  }
  if (signalled?.signal === 'SIGTERM') {
    return `handled by ${by} during its graceful shutdown but not committed; ${what} by the member that took the partition over`;
  }
  const fault = [...o.events].reverse().find((e) => !e.info && e.at <= again.at);
  const after = fault ? ` after "${fault.label}"` : '';
  if (again.worker === first.worker) {
    return (
      `${what} by the same member${after}: its offset commits failed, and it resumed from the last committed ` +
      'offset once it reached the group coordinator again'
    );
  }
  return `${what} by another member${after}: the partition moved in a rebalance before the first member's commit succeeded`;
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
