/**
 * System j's Java side (bench/systems/java/BenchConsumer.java): compiled with the machine's javac against the
 * broker's jars (kafka-clients, Jackson, log4j in .kafka/lib), once per source and jar set, into a git-ignored cache.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { BENCH_DIR, REPO_ROOT } from './settings.mjs';

const run = promisify(execFile);

export const JAVA_SOURCE = join(BENCH_DIR, 'systems', 'java', 'BenchConsumer.java');
/** The broker's classpath, fetched by the local launcher (scripts/kafka-local-lib.mjs). */
export const KAFKA_LIB = process.env.KAFKA_LIB_DIR ?? join(REPO_ROOT, '.kafka', 'lib');
const CACHE = join(BENCH_DIR, '.cache');
/**
 * The classpath the orchestrator built before its first run, in the environment of its children: a run of system j
 * starts its JVM at once instead of loading the launcher and asking javac for its version again.
 */
const CLASSPATH_ENV = 'BENCH_JAVA_CLASSPATH';

/** The environment under which a child's javaClasspath() resolves to `classpath` without checking it again. */
export function javaClasspathEnv(classpath) {
  return { [CLASSPATH_ENV]: classpath };
}

export class JavaBuildError extends Error {
  name = 'JavaBuildError';
}

function jars() {
  if (!existsSync(KAFKA_LIB)) return [];
  return readdirSync(KAFKA_LIB)
    .filter((f) => f.endsWith('.jar'))
    .sort();
}

/** javac's version line, the source and the jar names: a change to any of them compiles again. */
async function buildKey() {
  const { stderr, stdout } = await run('javac', ['-version']);
  const hash = createHash('sha256');
  hash.update(`${stdout}${stderr}\n`);
  hash.update(readFileSync(JAVA_SOURCE));
  hash.update(jars().join('\n'));
  return hash.digest('hex').slice(0, 16);
}

/**
 * The classpath to run BenchConsumer with, compiling it first when the cache has no build for this key. The jars
 * come with the local launcher's first start; with a reused broker (KAFKA_BROKERS) they are fetched here the same way.
 */
export async function javaClasspath() {
  const built = process.env[CLASSPATH_ENV]?.trim();
  if (built) return built;
  if (!process.env.KAFKA_LIB_DIR) {
    // Loaded here, not at the top: a child handed the classpath does not pay for loading the launcher's sources.
    const { resolveJars } = await import('../../scripts/kafka-local-lib.mjs');
    resolveJars();
  }
  const available = jars();
  if (
    !available.some((f) => f.startsWith('kafka-clients-')) ||
    !available.some((f) => f.startsWith('jackson-databind-'))
  )
    throw new JavaBuildError(
      `kafka-clients and jackson-databind jars not found in ${KAFKA_LIB} (KAFKA_LIB_DIR): system j runs on the broker's jars`,
    );
  const key = await buildKey().catch((error) => {
    throw new JavaBuildError(`javac (JDK 17+) is needed for system j: ${error.message}`);
  });
  const classes = join(CACHE, `java-${key}`);
  if (!existsSync(join(classes, 'BenchConsumer.class'))) {
    mkdirSync(CACHE, { recursive: true });
    const tmp = `${classes}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      await run(
        'javac',
        ['-nowarn', '-XDsuppressNotes', '-cp', join(KAFKA_LIB, '*'), '-d', tmp, JAVA_SOURCE],
        {
          timeout: 120_000,
        },
      );
    } catch (error) {
      rmSync(tmp, { recursive: true, force: true });
      throw new JavaBuildError(`javac failed on ${JAVA_SOURCE}: ${error.stderr || error.message}`);
    }
    rmSync(classes, { recursive: true, force: true });
    renameSync(tmp, classes);
  }
  return [classes, join(KAFKA_LIB, '*')].join(delimiter);
}
