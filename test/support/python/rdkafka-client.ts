import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForeignClient, type ForeignProducerRecord, INTEROP_CACHE } from '../foreign-client.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(HERE, 'interop_rdkafka.py');
const REQUIREMENTS = join(HERE, 'requirements.txt');

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolveRun, reject) =>
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`))
        : resolveRun(stdout),
    ),
  );
}

/**
 * The Python of a virtual environment with confluent-kafka (test/support/python/requirements.txt), created with
 * the machine's python3 and pip when it is not cached yet. Fails with what to install when there is no Python: the
 * librdkafka interop spec must not pass without running.
 */
export async function prepareRdkafkaPython(): Promise<string> {
  const python3 = process.env.INTEROP_PYTHON ?? 'python3';
  const version = spawnSync(python3, ['-c', 'import sys, venv, ensurepip; print(sys.version.split()[0])'], {
    encoding: 'utf8',
  });
  if (version.error || version.status !== 0)
    throw new Error(
      `the librdkafka interop spec needs Python 3.9+ with venv and ensurepip (${python3} on PATH, or INTEROP_PYTHON) ` +
        `to install confluent-kafka into a virtual environment: ${version.error?.message ?? version.stderr}`,
    );
  const requirements = await readFile(REQUIREMENTS);
  const key = createHash('sha256').update(version.stdout).update(requirements).digest('hex').slice(0, 16);
  const venv = join(INTEROP_CACHE, `venv-${key}`);
  const python = join(venv, 'bin', 'python');
  if (existsSync(python)) return python;

  await mkdir(INTEROP_CACHE, { recursive: true });
  const building = `${venv}.${process.pid}.tmp`;
  await rm(building, { recursive: true, force: true });
  try {
    await run(python3, ['-m', 'venv', building], 120_000);
    await run(
      join(building, 'bin', 'python'),
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS],
      600_000,
    );
    // The check that the bundled librdkafka loads, before the environment counts as ready.
    await run(
      join(building, 'bin', 'python'),
      ['-c', 'import confluent_kafka; confluent_kafka.libversion()'],
      60_000,
    );
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    throw new Error(
      `could not prepare the librdkafka interop environment (confluent-kafka from test/support/python/requirements.txt): ${(error as Error).message}`,
      { cause: error },
    );
  }
  // Renamed only once complete, so a cut-short install is never taken for a ready one. Its python still works
  // under the new name (bin/python is a symlink; only the unused console scripts name the old path).
  await rename(building, venv).catch(async (error: unknown) => {
    // Another run (a second checkout's) finished the same environment first: use that one.
    await rm(building, { recursive: true, force: true });
    if (!existsSync(python)) throw error;
  });
  return python;
}

export interface RdkafkaMemberOptions {
  brokers: string[];
  groupId: string;
  /** The topic whose partitions `assignments` track. */
  topic: string;
  /** Member ids start with it: the leaders of range and roundrobin sort members by id. */
  clientId: string;
  /** partition.assignment.strategy, in order of preference. */
  strategies: string[];
  maxRuntimeMs?: number;
}

/** A librdkafka (confluent-kafka) consumer-group member with the classic protocol, in a child process. */
export function startRdkafkaMember(python: string, options: RdkafkaMemberOptions): ForeignClient {
  const { brokers, groupId, topic, clientId, strategies, maxRuntimeMs = 110_000 } = options;
  return new ForeignClient(
    'librdkafka member',
    python,
    [
      SCRIPT,
      'consume',
      brokers.join(','),
      groupId,
      topic,
      clientId,
      strategies.join(','),
      String(maxRuntimeMs),
    ],
    topic,
  );
}

/** Writes `records` with a librdkafka producer (a batch per run of one codec); resolves once all are acknowledged. */
export async function rdkafkaProduce(
  python: string,
  brokers: string[],
  topic: string,
  records: ForeignProducerRecord[],
): Promise<ForeignClient> {
  const producer = new ForeignClient(
    'librdkafka producer',
    python,
    [SCRIPT, 'produce', brokers.join(','), topic],
    undefined,
    records.map((record) => JSON.stringify(record)),
  );
  await producer.finished(90_000);
  if (producer.exitCode !== 0 || producer.exitReason !== 'done')
    throw new Error(
      `the librdkafka producer failed (exit ${producer.exitCode}): ${producer.errors.join('; ')}\n${producer.stderr}`,
    );
  return producer;
}
