/**
 * A brand-new Nest app installs the packed library and uses it (issue 10 point 4): `npm pack` the package, write the
 * package README's quick start into an empty temp folder (its own package.json, tsconfig, a feature module with
 * `forFeature` and a `@KafkaHandler` controller with a validated DTO), install the tarball and the peers the README
 * lists at the versions this repo has (from the local npm cache; no network once they are cached), compile with the
 * app's own tsc, run it against the test broker, produce, and see every valid message handled, the invalid one
 * dead-lettered, and everything committed. @nestjs/terminus and prom-client are not installed: the main entry
 * must not need them. The app does not see this repo's node_modules (a folder outside the repo).
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const PACKAGE_DIR = join(REPO, 'packages', 'nest-kafka-groups');
const README = readFileSync(join(PACKAGE_DIR, 'README.md'), 'utf8');
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/** The quick start's files: every fenced block whose first line is `// <path>`. */
function quickStartFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [, body] of README.matchAll(/```(?:ts|json)\n([\s\S]*?)```/g)) {
    const [first, ...rest] = body.split('\n');
    const path = /^\/\/ ([\w./-]+)$/.exec(first)?.[1];
    if (path) files.set(path, rest.join('\n'));
  }
  return files;
}

/** The README's `npm install` lines: package names, runtime and dev. */
function installLines(): { dependencies: string[]; devDependencies: string[] } {
  const lines = [...README.matchAll(/^npm install (.+)$/gm)].map((m) => m[1].split(/\s+/));
  const dev = lines.filter((words) => words.includes('--save-dev'));
  const runtime = lines.filter((words) => !words.includes('--save-dev'));
  const names = (groups: string[][]) => groups.flat().filter((word) => !word.startsWith('-'));
  return { dependencies: names(runtime), devDependencies: names(dev) };
}

/** The version of a package this repo installed (the npm cache holds it). */
function repoVersion(name: string): string {
  return (
    JSON.parse(readFileSync(join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

describe('a fresh Nest 12 app installs the packed package', () => {
  const kafka = new KafkaTestClient();
  const workDir = mkdtempSync(join(tmpdir(), 'nkg-fresh-app-'));
  let app: ChildProcess | undefined;

  afterAll(async () => {
    app?.kill('SIGKILL');
    await kafka.closeAll();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('the README quick start, from npm pack to handled and committed messages', async () => {
    const timings: string[] = [];
    const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      const started = Date.now();
      const result = await work();
      timings.push(`${name} ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return result;
    };

    // The package's prepack builds it; `npm test` has just done that, so the spec packs what is built.
    expect(existsSync(join(PACKAGE_DIR, 'dist', 'index.js'))).toBe(true);
    const { stdout: packed } = await step('pack', () =>
      run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', workDir], {
        cwd: PACKAGE_DIR,
        maxBuffer: 1 << 24,
      }),
    );
    const [tarball] = JSON.parse(packed.slice(packed.indexOf('['))) as {
      filename: string;
      files: { path: string }[];
    }[];
    expect(tarball.files.some((f) => /\.spec\.|\.map$|^src\//.test(f.path))).toBe(false);

    const appDir = join(workDir, 'app');
    const files = quickStartFiles();
    expect([...files.keys()].sort()).toEqual([
      'src/app.module.ts',
      'src/main.ts',
      'src/orders/order.dto.ts',
      'src/orders/orders.controller.ts',
      'src/orders/orders.module.ts',
      'tsconfig.json',
    ]);
    for (const [path, text] of files) {
      mkdirSync(dirname(join(appDir, path)), { recursive: true });
      writeFileSync(join(appDir, path), text);
    }
    const { dependencies, devDependencies } = installLines();
    expect(dependencies).toContain('nest-kafka-groups');
    for (const optional of ['@nestjs/terminus', 'prom-client']) expect(dependencies).not.toContain(optional);
    const versions = (names: string[]) =>
      Object.fromEntries(
        names.map((name) => [
          name,
          name === 'nest-kafka-groups' ? `file:${join(workDir, tarball.filename)}` : repoVersion(name),
        ]),
      );
    // What `npm init -y && npm pkg set type=module` and the README's two installs leave, installed in one go.
    writeFileSync(
      join(appDir, 'package.json'),
      JSON.stringify({
        name: 'fresh-app',
        private: true,
        type: 'module',
        dependencies: versions(dependencies),
        devDependencies: versions(devDependencies),
      }),
    );
    await step('install', () => run('npm', ['install', ...NPM_FLAGS], { cwd: appDir }));
    // The package's own dependency and no optional peer, and no copy of this repo's sources.
    expect(existsSync(join(appDir, 'node_modules', 'kafkajs', 'package.json'))).toBe(true);
    expect(existsSync(join(appDir, 'node_modules', '@nestjs', 'terminus'))).toBe(false);
    expect(existsSync(join(appDir, 'node_modules', 'prom-client'))).toBe(false);
    expect(existsSync(join(appDir, 'node_modules', 'nest-kafka-groups', 'src'))).toBe(false);

    await step('tsc', () =>
      run(process.execPath, [join(appDir, 'node_modules', 'typescript', 'bin', 'tsc')], { cwd: appDir }),
    );

    const topic = uniqueName('fresh-orders');
    const group = uniqueName('fresh-orders');
    await kafka.createTopic(topic, 2);
    await kafka.createTopic(`${topic}-dlt`, 1);

    const handled = new Set<string>();
    let output = '';
    app = spawn(process.execPath, ['dist/main.js'], {
      cwd: appDir,
      env: {
        PATH: process.env.PATH,
        NO_COLOR: '1',
        PORT: '0',
        KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
        ORDERS_TOPIC: topic,
        ORDERS_GROUP: group,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolveExit) =>
      app!.once('exit', (code, signal) => resolveExit(signal ?? code)),
    );
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-50_000);
      for (const match of chunk.toString().matchAll(/\[OrdersController\] order (\S+) x(\d+)/g))
        handled.add(match[1]);
    };
    app.stdout!.on('data', collect);
    app.stderr!.on('data', collect);

    const orders = Array.from({ length: 20 }, (_, i) => ({ id: `o${i}`, quantity: i + 1 }));
    await step('consume', async () => {
      await kafka.produceKeyed(
        topic,
        orders.length,
        (i) => `k${i % 5}`,
        (i) => orders[i],
      );
      const producer = await kafka.producer();
      await producer.send({
        topic,
        acks: -1,
        messages: [{ key: 'bad', value: JSON.stringify({ id: 'bad', quantity: 0 }) }],
      });
      await waitFor(
        `the fresh app to handle ${orders.length} orders (output: ${output.slice(-2_000)})`,
        60_000,
        () => handled.size >= orders.length,
      );
      await kafka.waitForCommittedToEnd(group, topic, 30_000);
    });

    expect([...handled].sort()).toEqual(orders.map((o) => o.id).sort());
    const [deadLetter] = await kafka.readMessages(`${topic}-dlt`, 1);
    expect(JSON.parse(deadLetter.value!.toString())).toEqual({ id: 'bad', quantity: 0 });
    expect(deadLetter.headers?.['kafka_dlt-original-topic']?.toString()).toBe(topic);
    expect(output).not.toMatch(/\bERROR\b/);

    // enableShutdownHooks: Nest closes the app (members commit and leave), then re-raises the signal.
    app.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    app = undefined;
    console.log(
      `fresh app: ${timings.join(', ')}; tarball ${tarball.filename}, ${tarball.files.length} files`,
    );
  });
});
