/** The fault suite's verdicts, each from fabricated worker lines, topic contents and fault events. */
import { describe, expect, it } from '@jest/globals';
import {
  analyse,
  type DeadLetter,
  deadLetterPartitionsOf,
  type Delivery,
  type Observations,
  recordsWithoutOutcome,
  type TopicRecord,
} from './analysis.js';

const T0 = 1_000_000;

/** Ten messages, seq 0-9: even ones on partition 0, odd ones on partition 1, offsets in order. */
function records(): TopicRecord[] {
  return Array.from({ length: 10 }, (_, seq) => ({
    seq,
    partition: seq % 2,
    offset: String(Math.floor(seq / 2)),
    value: Buffer.from(`message ${seq}`).toString('hex'),
  }));
}

function delivery(seq: number, at: number, extra: Partial<Delivery> = {}): Delivery {
  return {
    seq,
    partition: seq % 2,
    offset: String(Math.floor(seq / 2)),
    attempt: 1,
    at,
    worker: 'w1',
    ...extra,
  };
}

/** Every message processed once, in order, by w1, 10 ms apart. */
function clean(extra: Partial<Observations> = {}): Observations {
  return {
    acked: new Set(Array.from({ length: 10 }, (_, seq) => seq)),
    records: records(),
    deliveries: Array.from({ length: 10 }, (_, seq) => delivery(seq, T0 + seq * 10)),
    failures: [],
    deadLetters: [],
    expectedDeadLetter: () => false,
    events: [],
    productionStart: T0,
    productionEnd: T0 + 100,
    logs: [],
    stops: [],
    maxAttempts: 3,
    ...extra,
  };
}

/** seq 4 handled again by w2 at +500 ms. */
function withDuplicate(extra: Partial<Observations> = {}): Observations {
  const o = clean(extra);
  o.deliveries.push(delivery(4, T0 + 500, { worker: 'w2' }));
  return o;
}

const problemsOf = (o: Observations) => analyse(o).problems;

describe('fault-suite analysis', () => {
  it('passes a run where every record was handled once, in order, on its first attempt', () => {
    const row = analyse(clean());
    expect(row).toMatchObject({
      produced: 10,
      records: 10,
      processed: 10,
      duplicates: 0,
      lost: 0,
      deadLettered: 0,
    });
    expect(row.problems).toEqual([]);
  });

  describe('lost', () => {
    it('fails when a record was neither processed nor dead-lettered', () => {
      const o = clean();
      o.deliveries.splice(5, 1);
      const row = analyse(o);
      expect(row.lost).toBe(1);
      expect(row.problems).toEqual([expect.stringMatching(/^lost: 1 record\(s\) .* seq 5 at 1@2$/)]);
    });

    it('fails when an acknowledged message is not in the topic', () => {
      const o = clean({ partitionOf: () => 1 });
      o.acked = new Set([...o.acked, 10]);
      expect(problemsOf(o)).toEqual([
        expect.stringMatching(/^lost: 1 message\(s\) .*: seq 10 \(partition 1\)$/),
      ]);
    });
  });

  describe('duplicate', () => {
    it('fails any duplicate where the guarantees promise none, naming its cause from the logs', () => {
      const o = withDuplicate({
        logs: [
          { worker: 'w2', at: T0 + 300, level: 'log', context: 'ConsumerMember', message: 'Joined as m-2' },
        ],
      });
      const row = analyse(o);
      expect(row.duplicates).toBe(1);
      expect([...row.duplicateReasons.keys()]).toEqual([
        expect.stringMatching(/after a rebalance \(w2 joined/),
      ]);
      expect(row.problems).toEqual([expect.stringMatching(/^duplicate: 1 record\(s\) .* promise none: 0@2/)]);
    });

    it('allows a duplicate with evidence where the scenario allows them: a SIGKILL of the first member', () => {
      const o = withDuplicate({
        duplicates: 'with-evidence',
        events: [{ label: 'SIGKILL w1', at: T0 + 200, workers: ['w1'], signal: 'SIGKILL' }],
      });
      const row = analyse(o);
      expect(row.problems).toEqual([]);
      expect([...row.duplicateReasons]).toEqual([[expect.stringMatching(/^w1 was killed \(SIGKILL\)/), 1]]);
    });

    it('gives the SIGKILL as the cause when the killed member finished the record just after the kill was marked', () => {
      // The runner marks the kill, then signals: the member can still finish a record in between, and it dies
      // without committing it. The rejoin of the member that took the partition over is not the cause.
      const o = withDuplicate({
        duplicates: 'with-evidence',
        events: [{ label: 'SIGKILL w1', at: T0 + 39, workers: ['w1'], signal: 'SIGKILL' }],
        logs: [
          { worker: 'w2', at: T0 + 300, level: 'log', context: 'ConsumerMember', message: 'Joined as m-2' },
        ],
      });
      expect(o.deliveries[4].at).toBe(T0 + 40);
      const row = analyse(o);
      expect(row.problems).toEqual([]);
      expect([...row.duplicateReasons]).toEqual([[expect.stringMatching(/^w1 was killed \(SIGKILL\)/), 1]]);
    });

    it('gives a client error the first member logged as the cause, and never a handler failure', () => {
      const o = withDuplicate({
        duplicates: 'with-evidence',
        logs: [
          {
            worker: 'w1',
            at: T0 + 150,
            level: 'warn',
            context: 'ConsumerMember',
            message: 'handle failed on t/0@9 (attempt 1): boom',
          },
          {
            worker: 'w1',
            at: T0 + 250,
            level: 'debug',
            context: 'kafkajs:Consumer',
            message: 'Crash: coordinator not available',
          },
        ],
      });
      const row = analyse(o);
      expect(row.problems).toEqual([]);
      expect([...row.duplicateReasons.keys()]).toEqual([
        expect.stringContaining('w1 logged "Crash: coordinator not available" (kafkajs:Consumer)'),
      ]);
    });

    it('takes a broker fault between the two outcomes as the cause', () => {
      const o = withDuplicate({
        duplicates: 'with-evidence',
        events: [{ label: 'broker stopped', at: T0 + 200 }],
      });
      expect(analyse(o).problems).toEqual([]);
      expect([...analyse(o).duplicateReasons.keys()]).toEqual([
        'handled again after the fault "broker stopped"',
      ]);
    });

    it('fails a duplicate without evidence even where duplicates are allowed', () => {
      const o = withDuplicate({
        duplicates: 'with-evidence',
        // Evidence outside the window between the two outcomes is no evidence.
        events: [{ label: 'SIGKILL w1', at: T0 + 900, workers: ['w1'], signal: 'SIGKILL' }],
        logs: [
          {
            worker: 'w1',
            at: T0 + 200,
            level: 'warn',
            context: 'ConsumerMember',
            message: 'handle failed on 0@2 (attempt 1): x',
          },
          {
            worker: 'w1',
            at: T0 + 210,
            level: 'warn',
            context: 'ConsumerMember',
            message: 'handle gave up on t[0]@2 after 3 attempt(s) (Error: x); sent to t-dlt',
          },
        ],
      });
      const row = analyse(o);
      expect(row.duplicateReasons.get('no evidence in the logs or the fault events')).toBe(1);
      expect(row.problems).toEqual([
        expect.stringMatching(/^duplicate: 1 record\(s\) handled again without evidence/),
      ]);
    });

    it('takes a member still on an older assignment as the cause: another joined with the partition after its last join', () => {
      const joined = (worker: string, at: number) => ({
        worker,
        at,
        level: 'log',
        context: 'ConsumerMember',
        message: `Joined as faults-${worker}-1, assigned {"t":[0,1]}`,
      });
      // seq 4 (partition 0) handled by w1, which joined after w2's last join, then by w2 at +500 ms.
      const stale = analyse(
        withDuplicate({ duplicates: 'with-evidence', logs: [joined('w2', T0 - 100), joined('w1', T0 - 50)] }),
      );
      expect(stale.problems).toEqual([]);
      expect([...stale.duplicateReasons.keys()]).toEqual([
        expect.stringContaining(
          "handled again by w2 on an older generation's assignment: w1 joined with the partition",
        ),
      ]);
      // w2 joined since: no stale assignment, no evidence.
      const current = analyse(
        withDuplicate({ duplicates: 'with-evidence', logs: [joined('w1', T0 - 100), joined('w2', T0 - 50)] }),
      );
      expect(current.problems).toEqual([
        expect.stringMatching(/^duplicate: 1 record\(s\) handled again without evidence/),
      ]);
    });

    it('fails a dead letter written twice', () => {
      const o = clean({ expectedDeadLetter: (seq) => seq === 3 });
      o.deliveries.splice(3, 1);
      const dead: DeadLetter = { seq: 3, partition: 1, offset: '1', at: T0 + 40, value: records()[3].value };
      o.deadLetters.push(dead, { ...dead, at: T0 + 90 });
      const row = analyse(o);
      expect(row).toMatchObject({ duplicates: 1, deadLettered: 1 });
      expect(row.problems).toEqual([
        expect.stringMatching(/^duplicate: 1 record\(s\) handled again without evidence of a cause: 1@1$/),
      ]);
    });

    it('takes a crash of the member whose dead-letter write was in flight as the cause of a second dead letter', () => {
      // seq 3 fails its 3 attempts on w1; w1's consumer crashes while the write retries, the write lands after the
      // crash, and w2, now owning the partition, fails it 3 times and writes it again.
      const twice = (crashAt: number) => {
        const o = clean({ expectedDeadLetter: (seq) => seq === 3, duplicates: 'with-evidence' });
        o.deliveries.splice(3, 1);
        o.failures = [1, 2, 3].flatMap((attempt) => [
          delivery(3, T0 + 20 + attempt, { attempt }),
          delivery(3, T0 + 300 + attempt, { attempt, worker: 'w2' }),
        ]);
        const dead: DeadLetter = {
          seq: 3,
          partition: 1,
          offset: '1',
          at: T0 + 200,
          value: records()[3].value,
        };
        o.deadLetters.push(dead, { ...dead, at: T0 + 310 });
        o.logs = [
          {
            worker: 'w1',
            at: crashAt,
            level: 'warn',
            context: 'kafkajs:Runner',
            message: 'Could not commit the resolved offsets before the crash; they will be redelivered',
          },
        ];
        return analyse(o);
      };
      const crashed = twice(T0 + 100);
      expect(crashed.problems).toEqual([]);
      expect([...crashed.duplicateReasons.keys()]).toEqual([
        expect.stringContaining('dead-lettered again: w1 logged "Could not commit the resolved offsets'),
      ]);
      // A crash before the write began is no evidence for it.
      expect(twice(T0 + 10).problems).toEqual([
        expect.stringMatching(/^duplicate: 1 record\(s\) handled again without evidence of a cause: 1@1$/),
      ]);
    });

    it('does not count a message the producer wrote twice, each copy handled once', () => {
      const o = clean();
      o.records.push({ seq: 8, partition: 0, offset: '5', value: records()[8].value });
      o.deliveries.push(delivery(8, T0 + 200, { offset: '5' }));
      const row = analyse(o);
      expect(row).toMatchObject({ duplicates: 0, producerDuplicates: 1 });
      expect(row.problems).toEqual([]);
    });
  });

  describe('wrong record', () => {
    it('fails when a handler saw another message than the record at its partition and offset', () => {
      const o = clean();
      o.deliveries[4] = { ...o.deliveries[4], seq: 6 };
      expect(problemsOf(o)).toContainEqual(
        expect.stringMatching(/^wrong record: 1 outcome\(s\): handled seq 6 as 0@2, which holds seq 4$/),
      );
    });

    it('fails a dead letter whose key or value is not the record it names', () => {
      const o = clean({ expectedDeadLetter: (seq) => seq === 3 || seq === 5 });
      o.deliveries = o.deliveries.filter((d) => d.seq !== 3 && d.seq !== 5);
      o.deadLetters.push(
        { seq: 3, partition: 1, offset: '1', at: T0 + 40, value: 'ff' },
        { seq: 7, partition: 1, offset: '2', at: T0 + 60, value: records()[5].value },
      );
      const problems = problemsOf(o);
      expect(problems).toContainEqual(expect.stringMatching(/^wrong record: 2 outcome\(s\):/));
      expect(problems.join('\n')).toMatch(/dead letter of 1@1 does not carry the record's value bytes/);
      expect(problems.join('\n')).toMatch(/dead-lettered seq 7 as 1@2, which holds seq 5/);
    });

    it('fails an outcome for an offset the topic does not hold', () => {
      const o = clean();
      o.deliveries.push(delivery(12, T0 + 300, { offset: '9' }));
      expect(problemsOf(o)).toContainEqual(
        'wrong record: outcomes for records not in the topic: handled 0@9',
      );
    });
  });

  describe('out of order', () => {
    it('fails when a partition handled a later offset before an earlier one', () => {
      const o = clean();
      // seq 2 (0@1) and seq 4 (0@2) swap times.
      o.deliveries[2].at = T0 + 45;
      const row = analyse(o);
      expect(row.problems).toEqual([
        expect.stringMatching(
          /^out of order: 1 case\(s\): partition 0: offset 2 \(w1\) before offset 1 \(w1\)$/,
        ),
      ]);
    });

    it('breaks ties of the millisecond clock by the order the lines arrived', () => {
      const o = clean();
      for (const d of o.deliveries) d.at = T0;
      o.deliveries.forEach((d, i) => (d.order = i));
      expect(problemsOf(o)).toEqual([]);
      o.deliveries[2].order = 99;
      expect(problemsOf(o)).toEqual([
        expect.stringMatching(/^out of order: .* offset 2 \(w1\) before offset 1/),
      ]);
    });

    it('accepts a redelivery from an earlier offset after the partition moved', () => {
      const o = withDuplicate({
        duplicates: 'with-evidence',
        events: [{ label: 'broker stopped', at: T0 + 200 }],
      });
      expect(problemsOf(o)).toEqual([]);
    });
  });

  describe('wrong attempt', () => {
    /** seq 3 fails on attempts 1 and 2; seq 5 on every attempt. */
    const failsOn = (seq: number, attempt: number) => seq === 5 || (seq === 3 && attempt <= 2);

    function withFailures(attempts: number): Observations {
      const o = clean({ failsOn, expectedDeadLetter: (seq) => seq === 5 });
      o.deliveries = o.deliveries.filter((d) => d.seq !== 3 && d.seq !== 5);
      o.failures = [
        delivery(3, T0 + 31, { attempt: 1 }),
        delivery(3, T0 + 32, { attempt: 2 }),
        ...Array.from({ length: attempts }, (_, i) => delivery(5, T0 + 51 + i, { attempt: i + 1 })),
      ];
      o.deliveries.push(delivery(3, T0 + 33, { attempt: 3 }));
      o.deadLetters.push({ seq: 5, partition: 1, offset: '2', at: T0 + 60 });
      return o;
    }

    it('passes the planned attempts: success on the first attempt not failed, dead letter after the last', () => {
      expect(problemsOf(withFailures(3))).toEqual([]);
    });

    it('fails a library that makes 5 attempts instead of 3', () => {
      expect(problemsOf(withFailures(5))).toEqual([
        expect.stringMatching(
          /^wrong attempt: 3 case\(s\): 1@2 attempt 4 of at most 3, 1@2 attempt 5 of at most 3, 1@2 dead-lettered after attempt 5 of 3$/,
        ),
      ]);
    });

    it('counts attempts per member: two members on one record each count from 1', () => {
      const o = withFailures(3);
      o.failures!.push(
        delivery(3, T0 + 31, { attempt: 1, worker: 'w2', order: 1 }),
        delivery(3, T0 + 32, { attempt: 2, worker: 'w2', order: 2 }),
      );
      o.deliveries.push(delivery(3, T0 + 34, { attempt: 3, worker: 'w2' }));
      o.duplicates = 'with-evidence';
      o.events.push({ label: 'broker killed', at: T0 + 20 });
      // The duplicate has no evidence between its two outcomes, but the attempts are right.
      expect(problemsOf(o)).toEqual([
        expect.stringMatching(/^duplicate: 1 record\(s\) handled again without evidence/),
      ]);
    });

    it('fails a dead letter written before the attempts were used up', () => {
      expect(problemsOf(withFailures(2))).toEqual([
        'wrong attempt: 1 case(s): 1@2 dead-lettered after attempt 2 of 3',
      ]);
    });

    it('fails an attempt count that skips a number or a success on an unplanned attempt', () => {
      const skipped = withFailures(3);
      skipped.failures = skipped.failures!.filter((f) => !(f.seq === 3 && f.attempt === 2));
      expect(problemsOf(skipped)).toEqual(['wrong attempt: 1 case(s): 1@1 attempt 3 after attempt 1 on w1']);

      // A library that counts attempts wrongly lets the handler succeed where the plan fails it.
      expect(problemsOf(clean({ failsOn }))).toEqual([
        'wrong attempt: 2 case(s): 1@1 succeeded on attempt 1, planned on attempt 3, ' +
          '1@2 succeeded on attempt 1, planned to fail every attempt',
      ]);
    });

    it('retry topics: attempts travel with the record, so another member goes on from the one that failed', () => {
      const o = withFailures(3);
      o.attemptsInRecords = true;
      // seq 3's attempt 2 and its success on a second member, attempt 3 of seq 5 on a third.
      o.failures = o.failures!.map((f) =>
        (f.seq === 3 && f.attempt === 2) || (f.seq === 5 && f.attempt === 3) ? { ...f, worker: 'w2' } : f,
      );
      o.deliveries = o.deliveries.map((d) => (d.seq === 3 ? { ...d, worker: 'w3' } : d));
      expect(problemsOf(o)).toEqual([]);
      // Per member, the same run is wrong: w3 counted from nothing to 3.
      expect(problemsOf({ ...o, attemptsInRecords: false })).toEqual([
        expect.stringMatching(/^wrong attempt: 3 case\(s\): /),
      ]);
    });

    it('retry topics: a member killed after a first attempt failed explains a second chain', () => {
      const o = withFailures(3);
      o.attemptsInRecords = true;
      o.duplicates = 'with-evidence';
      // seq 5's first attempt on w2, killed; the next owner starts the chain again and dead-letters it twice.
      o.failures!.push(delivery(5, T0 + 56, { attempt: 1, worker: 'w3', order: 9 }));
      o.failures = o.failures!.map((f) =>
        f.seq === 5 && f.attempt === 1 && f.at === T0 + 51 ? { ...f, worker: 'w2' } : f,
      );
      o.deadLetters.push({ seq: 5, partition: 1, offset: '2', at: T0 + 70 });
      expect(problemsOf(o)).toEqual([
        expect.stringMatching(/^duplicate: 1 record\(s\) handled again without evidence/),
      ]);
      o.events.push({ label: 'SIGKILL w2', at: T0 + 52, workers: ['w2'], signal: 'SIGKILL' });
      expect(problemsOf(o)).toEqual([]);
    });

    it('retry topics: an attempt before the one it follows failed is wrong', () => {
      const o = withFailures(3);
      o.attemptsInRecords = true;
      o.failures = o.failures!.filter((f) => !(f.seq === 3 && f.attempt === 2));
      expect(problemsOf(o)).toEqual(['wrong attempt: 1 case(s): 1@1 attempt 3 before attempt 2 failed']);
    });
  });

  describe('graceful exit', () => {
    it('passes a worker that reported app.close() resolved and exited 0', () => {
      const o = clean({ stops: [{ worker: 'w2', at: T0 + 50, closedAt: T0 + 80, code: 0, signal: null }] });
      expect(problemsOf(o)).toEqual([]);
    });

    it('fails a worker that died of the SIGTERM itself, without the line', () => {
      const o = clean({ stops: [{ worker: 'w2', at: T0 + 50, code: null, signal: 'SIGTERM' }] });
      expect(problemsOf(o)).toEqual([
        'no graceful exit: w2 ended (SIGTERM) without reporting that app.close() resolved',
      ]);
    });

    it('fails a worker that reported the close but exited with an error code', () => {
      const o = clean({ stops: [{ worker: 'w3', at: T0 + 50, closedAt: T0 + 60, code: 1, signal: null }] });
      expect(problemsOf(o)).toEqual([
        'no graceful exit: w3 reported app.close() resolved but exited with code 1',
      ]);
    });
  });

  describe('dead letters', () => {
    it('fails a message dead-lettered that should succeed, and a planned failure that was not', () => {
      const o = clean({ expectedDeadLetter: (seq) => seq === 9 });
      o.deliveries = o.deliveries.filter((d) => d.seq !== 2);
      o.deadLetters.push({ seq: 2, partition: 0, offset: '1', at: T0 + 30 });
      const problems = problemsOf(o);
      expect(problems).toContainEqual('1 message(s) dead-lettered that should succeed: seq 2');
      expect(problems).toContainEqual('1 planned failure(s) not in the dead-letter topic: seq 9');
    });
  });
});

describe('evidence of lost records', () => {
  it('finds the records nobody processed or dead-lettered', () => {
    const o = clean();
    o.deliveries = o.deliveries.filter((d) => d.seq !== 3 && d.seq !== 8);
    o.deadLetters = [{ seq: 8, partition: 0, offset: '4', at: T0 + 200 }];
    expect(recordsWithoutOutcome(o).map((r) => r.seq)).toEqual([3]);
  });

  it('names the dead-letter partitions that should hold them: source partition, else key, else every one', () => {
    const keyed = (seq: number) => (seq % 2 === 0 ? seq % 3 : undefined);
    expect(deadLetterPartitionsOf([{ seq: 7, partition: 1 }], 3, keyed)).toEqual([1]);
    expect(deadLetterPartitionsOf([{ seq: 8, partition: 4 }], 3, keyed)).toEqual([2]);
    expect(deadLetterPartitionsOf([{ seq: 9, partition: 5 }], 3, keyed)).toEqual([0, 1, 2]);
    expect(deadLetterPartitionsOf([], 3, keyed)).toEqual([]);
  });
});
