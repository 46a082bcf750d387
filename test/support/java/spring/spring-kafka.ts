import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testBrokers } from 'nest-kafka-groups/testing';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..', '..', '..');
const POM = join(HERE, 'pom.xml');
const SOURCES = ['SpringDeadLetters.java', 'SpringRetryChain.java'].map((file) => join(HERE, file));
/** Spring Kafka's jars (no Spring Boot), beside the broker's in the git-ignored .kafka/ folder. */
export const SPRING_LIB = process.env.SPRING_KAFKA_LIB_DIR ?? join(REPO, '.kafka', 'spring-lib');

/**
 * Copies spring-kafka and its runtime dependencies into SPRING_LIB with Maven, once per version of the pom (a marker
 * holds its hash); later runs need no registry. Niced and asynchronous: it runs beside other tests.
 */
export async function resolveSpringJars(): Promise<void> {
  const marker = join(SPRING_LIB, '.complete');
  const pomHash = createHash('sha256').update(readFileSync(POM)).digest('hex');
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === pomHash) return;
  rmSync(SPRING_LIB, { recursive: true, force: true });
  const args = ['-n', '10', 'mvn', '-B', '-q', '-U', '-C', '-f', POM, 'dependency:copy-dependencies'];
  args.push('-DincludeScope=runtime', `-DoutputDirectory=${SPRING_LIB}`);
  await new Promise<void>((resolveFetch, reject) =>
    execFile('nice', args, { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (error, stdout, stderr) =>
      error
        ? reject(
            new Error(
              `Maven could not fetch spring-kafka (${POM}) into ${SPRING_LIB}: ${error.message}\n` +
                `${stdout}${stderr}`.slice(-4000),
            ),
          )
        : resolveFetch(),
    ),
  );
  writeFileSync(marker, `${pomHash}\n`);
}

/** Compiles SpringDeadLetters.java and SpringRetryChain.java against SPRING_LIB into a fresh temp directory. */
export async function compileSpringPrograms(): Promise<string> {
  const classDir = await mkdtemp(join(tmpdir(), 'spring-programs-'));
  await new Promise<void>((resolveCompile, reject) =>
    execFile(
      'javac',
      ['-nowarn', '-cp', join(SPRING_LIB, '*'), '-d', classDir, ...SOURCES],
      { timeout: 120_000 },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`javac failed: ${error.message}\n${stderr}`)) : resolveCompile(),
    ),
  ).catch(async (error: unknown) => {
    await rm(classDir, { recursive: true, force: true });
    throw error;
  });
  return classDir;
}

/** What Spring's listener read of one dead letter (SpringDeadLetters.java `read`). */
export interface SpringDeadLetter {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  originalTopic: string | null;
  originalPartition: number | string | null;
  originalOffset: string | null;
  originalTimestamp: string | null;
  originalTimestampType: string | null;
  originalConsumerGroup: string | null;
  exceptionFqcn: string | null;
  exceptionCauseFqcn: string | null;
  exceptionMessage: string | null;
  exceptionStacktraceFirstLine: string | null;
  /** What follows each "Caused by: " line of the stack trace, outermost cause first. */
  exceptionStacktraceCauses: string[];
  originalTopics: string[];
  dltHeaderNames: string[];
}

/** Runs a compiled Spring program's main class with `args`; its stdout lines, or its output when it exits otherwise than 0. */
function runSpring(classDir: string, mainClass: string, args: string[]): Promise<string[]> {
  return new Promise((resolveRun, reject) =>
    execFile(
      'java',
      [
        '-Xmx256m',
        '-XX:TieredStopAtLevel=1',
        '-cp',
        [classDir, join(SPRING_LIB, '*')].join(delimiter),
        mainClass,
        ...args,
      ],
      { timeout: 150_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`${mainClass} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`))
          : resolveRun(stdout.split('\n')),
    ),
  );
}

/**
 * SpringDeadLetters in `mode` (read: Spring's container reads `count` records of `topic`; recover: Spring's
 * DeadLetterPublishingRecoverer dead-letters `count` records of `topic` to `<topic>-dlt`): its stdout lines.
 */
export function runSpringDeadLetters(
  classDir: string,
  mode: 'read' | 'recover',
  topic: string,
  count: number,
  groupId: string,
): Promise<string[]> {
  return runSpring(classDir, 'SpringDeadLetters', [
    mode,
    testBrokers().join(','),
    topic,
    String(count),
    groupId,
  ]);
}

/**
 * SpringRetryChain: Spring's @RetryableTopic (delays 1000 and 2000 ms) on `topic`, its listener failing (until
 * `count` dead letters) or succeeding (until `count` deliveries): its DELIVERY lines as [topic, attempt].
 */
export async function runSpringRetryChain(
  classDir: string,
  topic: string,
  groupId: string,
  mode: 'fail' | 'succeed',
  count: number,
): Promise<[string, number][]> {
  const lines = await runSpring(classDir, 'SpringRetryChain', [
    testBrokers().join(','),
    topic,
    groupId,
    mode,
    String(count),
  ]);
  return lines
    .filter((line) => line.startsWith('DELIVERY '))
    .map((line) => line.split(' '))
    .map(([, deliveredTopic, , , attempt]) => [deliveredTopic, Number(attempt)]);
}

/** The RECORD lines of a `read` run, parsed. */
export function springRecords(lines: string[]): SpringDeadLetter[] {
  return lines
    .filter((line) => line.startsWith('RECORD '))
    .map((line) => JSON.parse(line.slice('RECORD '.length)) as SpringDeadLetter);
}
