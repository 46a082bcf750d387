import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForeignClient, type ForeignProducerRecord, INTEROP_CACHE } from '../foreign-client.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCES = ['go.mod', 'go.sum', 'main.go', 'sarama.go', 'franz.go'];

export type GoClientKind = 'sarama' | 'franz';

/**
 * The path of the interop-go binary for the current sources (cached per source version; `go build` itself caches
 * packages in GOCACHE and modules in GOMODCACHE), built with the Go toolchain on PATH when it is not
 * cached yet. Fails with what to install when there is no Go: the interop spec must not pass without running.
 */
export async function buildGoClient(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of SOURCES) hash.update(file).update(await readFile(join(HERE, file)));
  const binary = join(INTEROP_CACHE, `interop-go-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(binary)) return binary;

  const version = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0)
    throw new Error(
      `the Go interop spec needs the Go toolchain (go 1.26+, see test/support/go/go.mod) on PATH to build ` +
        `test/support/go; 'go version' failed: ${version.error?.message ?? version.stderr}`,
    );
  await mkdir(INTEROP_CACHE, { recursive: true });
  const building = `${binary}.${process.pid}.tmp`;
  await new Promise<void>((resolveBuild, reject) =>
    execFile(
      'go',
      ['build', '-trimpath', '-buildvcs=false', '-o', building, '.'],
      // A first build downloads sarama and franz-go and compiles them: minutes on a busy 2-core machine.
      { cwd: HERE, timeout: 600_000 },
      (error, _stdout, stderr) =>
        error
          ? reject(
              new Error(
                `go build of test/support/go failed (${version.stdout.trim()}): ${error.message}\n${stderr}`,
              ),
            )
          : resolveBuild(),
    ),
  );
  await rename(building, binary);
  return binary;
}

export interface GoMemberOptions {
  client: GoClientKind;
  brokers: string[];
  groupId: string;
  /** The topic whose partitions `assignments` track. */
  topic: string;
  extraTopics?: string[];
  /** Member ids start with it: the leaders of range and roundrobin sort members by id. */
  clientId: string;
  /** Protocols in order of preference (default range, roundrobin). */
  strategies?: string[];
  /** The member exits by itself after this long, whatever happens to the test. */
  maxRuntimeMs?: number;
}

/** A sarama or franz-go consumer-group member (classic protocol) in a child process. */
export function startGoMember(binary: string, options: GoMemberOptions): ForeignClient {
  const { client, brokers, groupId, topic, extraTopics = [], clientId, maxRuntimeMs = 110_000 } = options;
  const strategies = options.strategies ?? ['range', 'roundrobin'];
  return new ForeignClient(
    `${client} member`,
    binary,
    [
      'consume',
      `-client=${client}`,
      `-brokers=${brokers.join(',')}`,
      `-group=${groupId}`,
      `-topics=${[topic, ...extraTopics].join(',')}`,
      `-client-id=${clientId}`,
      `-strategies=${strategies.join(',')}`,
      `-max-runtime=${maxRuntimeMs}ms`,
    ],
    topic,
  );
}

/** Writes `records` with a sarama or franz-go producer (a batch per run of one codec); resolves once all are acknowledged. */
export async function goProduce(
  binary: string,
  client: GoClientKind,
  brokers: string[],
  topic: string,
  records: ForeignProducerRecord[],
): Promise<ForeignClient> {
  const producer = new ForeignClient(
    `${client} producer`,
    binary,
    ['produce', `-client=${client}`, `-brokers=${brokers.join(',')}`, `-topic=${topic}`, '-max-runtime=60s'],
    undefined,
    records.map((record) => JSON.stringify(record)),
  );
  await producer.finished(90_000);
  if (producer.exitCode !== 0 || producer.exitReason !== 'done')
    throw new Error(
      `the ${client} producer failed (exit ${producer.exitCode}): ${producer.errors.join('; ')}\n${producer.stderr}`,
    );
  return producer;
}

/** Reads `count` records of `topic` from the start with franz-go, each with the codec of its record batch. */
export async function goRead(
  binary: string,
  brokers: string[],
  topic: string,
  count: number,
): Promise<ForeignClient> {
  const reader = new ForeignClient('franz-go reader', binary, [
    'read',
    `-brokers=${brokers.join(',')}`,
    `-topic=${topic}`,
    `-count=${count}`,
    '-max-runtime=30s',
  ]);
  await reader.finished(45_000);
  if (reader.exitCode !== 0)
    throw new Error(`the franz-go reader failed: ${reader.errors.join('; ')}\n${reader.stderr}`);
  return reader;
}
