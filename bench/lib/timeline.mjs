/**
 * Where a benchmark run's wall-clock time went: its phases (setup steps, the measuring phases, the report) and, for
 * every run of a system alike, the steps around what it measures. Written to the results file (`phases`,
 * `runs[].timing`, `latency.systems.<key>.timing`, `soak.timing`) and summed up in the report, so a slower run shows
 * which step grew.
 */
import { round } from './stats.mjs';

export class Timeline {
  entries = [];

  constructor(startedAt = Date.now()) {
    this.startedAt = startedAt;
  }

  /** Runs `work` as the phase `name`; records when it began and how long it took, also when it failed. */
  async phase(name, work) {
    const began = Date.now();
    try {
      return await work();
    } finally {
      this.entries.push({
        name,
        startSeconds: round((began - this.startedAt) / 1000, 1),
        seconds: round((Date.now() - began) / 1000, 1),
      });
    }
  }

  toJSON() {
    return [...this.entries].sort((x, y) => x.startSeconds - y.startSeconds);
  }
}

/**
 * A child's steps as the orchestrator saw them, in milliseconds: fork to `ready` (process start, imports, the
 * system's bootstrap), `ready` to the result (joining the group, then the measured messages), the result to the
 * process's exit (the system's stop: last commits, leaving the group), and the checks after it (the group's
 * commits against the data set, deleting the group).
 */
export class RunTiming {
  constructor() {
    this.forkedAt = Date.now();
  }

  mark(step) {
    this[`${step}At`] ??= Date.now();
  }

  toJSON() {
    const between = (from, to) =>
      this[`${from}At`] === undefined || this[`${to}At`] === undefined
        ? null
        : this[`${to}At`] - this[`${from}At`];
    return {
      toReadyMs: between('forked', 'ready'),
      readyToResultMs: between('ready', 'result'),
      resultToExitMs: between('result', 'exit'),
      checksMs: between('exit', 'checked'),
      wallMs: between('forked', 'checked') ?? between('forked', 'exit'),
    };
  }
}

/**
 * Per system, the sum over its runs of each step (`timing` of each run) and of the measured time, in seconds: what
 * the report's table of the throughput phase shows.
 */
export function timingBySystem(runs) {
  const systems = {};
  for (const run of runs) {
    const t = run.timing;
    if (!t) continue;
    const s = (systems[run.system] ??= {
      runs: 0,
      toReady: 0,
      joinAndMeasured: 0,
      measured: 0,
      toExit: 0,
      checks: 0,
      wall: 0,
    });
    s.runs++;
    s.toReady += (t.toReadyMs ?? 0) / 1000;
    s.joinAndMeasured += (t.readyToResultMs ?? 0) / 1000;
    s.measured += (run.firstToLastMs ?? 0) / 1000;
    s.toExit += (t.resultToExitMs ?? 0) / 1000;
    s.checks += (t.checksMs ?? 0) / 1000;
    s.wall += (t.wallMs ?? 0) / 1000;
  }
  for (const s of Object.values(systems))
    for (const key of Object.keys(s)) if (key !== 'runs') s[key] = round(s[key], 1);
  return systems;
}
