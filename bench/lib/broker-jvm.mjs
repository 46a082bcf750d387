/**
 * The JVM of the broker the benchmark starts (bench/run.mjs), for every system alike. Each stop-the-world pause of
 * the broker holds every append and fetch response under way, so the latency phase measures the broker's longest
 * pauses as much as the consumers. A G1 young collection copies what is alive in the young generation: on a 2-core
 * host the first ones copy a fresh broker's start-up state (about 24 MB) and stop it for 40-90 ms, wherever in a run
 * they fall. Promotion at the first copy keeps each later pause short, and a young generation of 512 MB holds what
 * the broker allocates over a whole latency run: the run collects the heap before each system's window
 * (broker-heap.mjs), so no collection falls in one. Generational ZGC (JDK 21+) stops the broker for well under a millisecond, but its
 * concurrent work takes the cores the generator and the consumers share with it: on a 2-core host every system's
 * latency was worse with it, so it is opt-in (BENCH_BROKER_GC=zgc: the newest JDK 21+ found) for hosts with cores to
 * spare (docs/BENCHMARKS.md, "the broker's pauses").
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The first JDK whose generational ZGC is usable (21: opt in with -XX:+ZGenerational; 23: the default). */
export const ZGC_GENERATIONAL_MIN_JAVA = 21;
const ZGC_GENERATIONAL_DEFAULT_JAVA = 23;

/** Kafka's own heap (bin/kafka-server-start.sh: 1 GB), fixed. */
const HEAP = ['-Xms1g', '-Xmx1g'];
/** Kafka's JVM line (bin/kafka-run-class.sh) without its G1 settings. */
const KAFKA_NON_GC = ['-server', '-XX:MaxInlineLevel=15', '-Djava.awt.headless=true'];
/**
 * A first metaspace GC threshold above what a broker's classes take (46 MB): a fresh broker otherwise runs
 * collections for its class metadata in its first minute, whatever the collector.
 */
const METASPACE = '-XX:MetaspaceSize=96m';

/** `java -version`'s major version (`openjdk version "17.0.15"`, `"25.0.3"`; `"1.8.0_392"` before Java 9). */
export function javaMajor(versionOutput) {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput ?? '');
  if (!match) return undefined;
  return match[1] === '1' ? Number(match[2]) : Number(match[1]);
}

/**
 * The broker's JVM options. `launcherOptions`: the launcher's (KAFKA_HEAP_OPTS then KAFKA_JVM_PERFORMANCE_OPTS, each
 * defaulting to its own); `major`: the broker's Java; `env`: KAFKA_HEAP_OPTS or KAFKA_JVM_PERFORMANCE_OPTS, when set,
 * keep the launcher's heap or collector choices, as in Kafka's scripts; `gcLog`: where the broker logs its
 * collections and every safepoint (the latency breakdown reads the safepoints: each stop of the broker, whatever
 * the collector, from the moment the VM began to stop its threads).
 */
export function brokerJvmOptions({ launcherOptions, major, env = {}, gcLog }) {
  const heapFromEnv = Boolean(env.KAFKA_HEAP_OPTS?.trim());
  const gcFromEnv = Boolean(env.KAFKA_JVM_PERFORMANCE_OPTS?.trim());
  const zgc = !gcFromEnv && wantsZgc(env) && major >= ZGC_GENERATIONAL_MIN_JAVA;
  const isHeap = (option) => /^-Xm[sxn]/.test(option);
  const launcherHeap = launcherOptions.filter(isHeap);
  const launcherRest = launcherOptions.filter((option) => !isHeap(option));
  const log = `-Xlog:gc,safepoint:file=${gcLog}:time`;
  if (zgc) {
    return [
      ...(heapFromEnv ? launcherHeap : HEAP),
      ...KAFKA_NON_GC,
      '-XX:+UseZGC',
      ...(major < ZGC_GENERATIONAL_DEFAULT_JAVA ? ['-XX:+ZGenerational'] : []),
      // The heap's pages touched at start, not by the first allocations into each of them under traffic.
      '-XX:+AlwaysPreTouch',
      METASPACE,
      log,
    ];
  }
  return [
    ...(heapFromEnv ? launcherHeap : [...HEAP, '-Xmn512m']),
    ...launcherRest,
    // G1: every survivor copied once, straight to the old generation; the heap collected before each latency run
    // by a full collection that ends before the run starts, not a concurrent cycle that goes on into its window.
    ...(gcFromEnv ? [] : ['-XX:MaxTenuringThreshold=0', '-XX:-ExplicitGCInvokesConcurrent', METASPACE]),
    log,
  ];
}

/** BENCH_BROKER_GC=zgc: the broker on generational ZGC (a JDK 21+) instead of G1. */
export function wantsZgc(env) {
  return env.BENCH_BROKER_GC?.trim().toLowerCase() === 'zgc';
}

/**
 * The Java to run the broker on: BENCH_BROKER_JAVA_HOME if set; with BENCH_BROKER_GC=zgc the newest of JAVA_HOME,
 * `java` on the PATH and the JDKs in the system's usual folders (/usr/lib/jvm, /Library/Java/JavaVirtualMachines) if
 * it is 21 or newer; else the launcher's (JAVA_HOME or the PATH's). Returns { javaHome (undefined: the PATH's),
 * major, version }.
 */
export function brokerJava(env = process.env) {
  const probe = (javaHome) => {
    const java = javaHome ? join(javaHome, 'bin', 'java') : 'java';
    const result = spawnSync(java, ['-version'], { encoding: 'utf8' });
    const output = `${result.stderr ?? ''}${result.stdout ?? ''}`;
    const major = result.status === 0 ? javaMajor(output) : undefined;
    return { javaHome, major, version: /version "([^"]+)"/.exec(output)?.[1] };
  };
  const chosen = env.BENCH_BROKER_JAVA_HOME?.trim();
  if (chosen) return probe(chosen);
  const launcher = probe(env.JAVA_HOME?.trim() || undefined);
  if (!wantsZgc(env)) return launcher;
  const installed = [
    ...jdksUnder('/usr/lib/jvm', ''),
    ...jdksUnder('/Library/Java/JavaVirtualMachines', join('Contents', 'Home')),
  ].map(probe);
  const newest = [launcher, ...installed]
    .filter((jdk) => jdk.major >= ZGC_GENERATIONAL_MIN_JAVA)
    .sort((a, b) => b.major - a.major)[0];
  return newest ?? launcher;
}

function jdksUnder(folder, home) {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.isSymbolicLink())
    .map((entry) => join(folder, entry.name, home))
    .filter((javaHome) => existsSync(join(javaHome, 'bin', 'java')));
}
