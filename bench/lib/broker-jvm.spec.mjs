/** The benchmark broker's JVM options: which collector for which Java, and what the operator's variables keep. */
import { describe, expect, it } from '@jest/globals';
import { brokerJvmOptions, javaMajor } from './broker-jvm.mjs';

const LAUNCHER = [
  '-Xms256m',
  '-Xmx512m',
  '-server',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-XX:MaxInlineLevel=15',
  '-Djava.awt.headless=true',
];
const GC_LOG = '/data/gc.log';
const options = (major, env = {}) =>
  brokerJvmOptions({ launcherOptions: LAUNCHER, major, env, gcLog: GC_LOG });
const ZGC = { BENCH_BROKER_GC: 'zgc' };

describe('javaMajor', () => {
  it('reads the major version of `java -version` before and after Java 9', () => {
    expect(javaMajor('openjdk version "17.0.15" 2025-04-15')).toBe(17);
    expect(javaMajor('openjdk version "25.0.3" 2026-04-21 LTS')).toBe(25);
    expect(javaMajor('openjdk version "21" 2023-09-19')).toBe(21);
    expect(javaMajor('java version "1.8.0_392"')).toBe(8);
    expect(javaMajor('bash: java: command not found')).toBeUndefined();
  });
});

describe('brokerJvmOptions', () => {
  it('runs generational ZGC on Java 23+ when asked, with a fixed 1 GB heap touched at start, and logs every safepoint', () => {
    const o = options(25, ZGC);
    expect(o).toEqual(
      expect.arrayContaining([
        '-XX:+UseZGC',
        '-Xms1g',
        '-Xmx1g',
        '-XX:+AlwaysPreTouch',
        '-XX:MetaspaceSize=96m',
      ]),
    );
    expect(o).not.toContain('-XX:+ZGenerational');
    expect(o.filter((x) => /G1|MaxGCPauseMillis|-Xmn|-Xm[sx]\d+m/.test(x))).toEqual([]);
    expect(o.at(-1)).toBe(`-Xlog:gc,safepoint:file=${GC_LOG}:time`);
  });

  it('opts in to generational ZGC on Java 21 and 22, where it is not the default', () => {
    expect(options(21, ZGC)).toEqual(expect.arrayContaining(['-XX:+UseZGC', '-XX:+ZGenerational']));
  });

  it('keeps G1 with a 512 MB young generation and promotion at the first copy on any Java unless ZGC is asked for', () => {
    expect(options(25)).toEqual(
      expect.arrayContaining(['-XX:+UseG1GC', '-Xmn512m', '-XX:MaxTenuringThreshold=0']),
    );
    expect(options(25)).not.toContain('-XX:+UseZGC');
    expect(options(17, ZGC)).not.toContain('-XX:+UseZGC');
    const o = options(17);
    expect(o).toEqual(
      expect.arrayContaining(['-XX:+UseG1GC', '-Xms1g', '-Xmx1g', '-Xmn512m', '-XX:MaxTenuringThreshold=0']),
    );
    // jcmd's GC.run before each latency run is a full collection: the last word on the flag is the benchmark's.
    expect(o.lastIndexOf('-XX:-ExplicitGCInvokesConcurrent')).toBeGreaterThan(
      o.lastIndexOf('-XX:+ExplicitGCInvokesConcurrent'),
    );
    expect(o).not.toContain('-XX:+UseZGC');
    expect(o).not.toContain('-Xmx512m');
    expect(o.at(-1)).toBe(`-Xlog:gc,safepoint:file=${GC_LOG}:time`);
  });

  it("keeps the launcher's heap under KAFKA_HEAP_OPTS and its collector under KAFKA_JVM_PERFORMANCE_OPTS", () => {
    const heap = options(25, { ...ZGC, KAFKA_HEAP_OPTS: '-Xms256m -Xmx512m' });
    expect(heap).toEqual(expect.arrayContaining(['-XX:+UseZGC', '-Xms256m', '-Xmx512m']));
    expect(heap).not.toContain('-Xmx1g');

    const gc = options(25, { ...ZGC, KAFKA_JVM_PERFORMANCE_OPTS: '-server -XX:+UseG1GC' });
    expect(gc).toEqual(expect.arrayContaining(['-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Xmx1g']));
    expect(gc).not.toContain('-XX:+UseZGC');
    expect(gc).not.toContain('-XX:MaxTenuringThreshold=0');
    expect(gc).not.toContain('-XX:-ExplicitGCInvokesConcurrent');
  });
});
