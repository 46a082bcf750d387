/**
 * What the packed-package specs (fresh-app, cjs-app, esm-app) share: `npm pack` the library, the package README's
 * quick start files and install lines, an offline install of an app in a temp folder, the app's own test runner and
 * the built app as child processes, and the orders scenario the quick start promises (handled, the invalid one
 * dead-lettered, all committed, clean SIGTERM).
 */
import { expect } from '@jest/globals';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';

export const run = promisify(execFile);
export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const PACKAGE_DIR = join(REPO, 'packages', 'nest-kafka-groups');
const README = readFileSync(join(PACKAGE_DIR, 'README.md'), 'utf8');
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/** Runs named steps and keeps their durations, for the spec's closing line. */
export class Steps {
  readonly timings: string[] = [];

  async step<T>(name: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const result = await work();
    this.timings.push(`${name} ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  }
}

export interface PackedTarball {
  /** Absolute path of the .tgz. */
  path: string;
  filename: string;
  files: { path: string }[];
}

/** `npm pack` of the built library into `dest` (its prepack would build it: `npm test` has just done that). */
export async function packLibrary(dest: string): Promise<PackedTarball> {
  expect(existsSync(join(PACKAGE_DIR, 'dist', 'index.js'))).toBe(true);
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], {
    cwd: PACKAGE_DIR,
    maxBuffer: 1 << 24,
  });
  const [tarball] = JSON.parse(stdout.slice(stdout.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
  }[];
  return { ...tarball, path: join(dest, tarball.filename) };
}

/**
 * The README's files: every fenced block whose first line is `// <path>`. With `variant`, a block headed
 * `// <path> (<variant>)` replaces that path's plain one.
 */
export function readmeFiles(variant?: string): Map<string, string> {
  const files = new Map<string, string>();
  const variants = new Map<string, string>();
  for (const [, body] of README.matchAll(/```(?:ts|json)\n([\s\S]*?)```/g)) {
    const [first, ...rest] = body.split('\n');
    const header = /^\/\/ ([\w./-]+)(?: \(([^)]+)\))?$/.exec(first);
    if (!header) continue;
    if (header[2] === undefined) files.set(header[1], rest.join('\n'));
    else if (header[2] === variant) variants.set(header[1], rest.join('\n'));
  }
  if (variant !== undefined) expect(variants.size).toBeGreaterThan(0);
  return new Map([...files, ...variants]);
}

/** The quick start's source files (besides its tsconfig.json). */
export const QUICK_START_SOURCES = [
  'src/app.module.ts',
  'src/main.ts',
  'src/orders/order.dto.ts',
  'src/orders/orders.controller.ts',
  'src/orders/orders.module.ts',
];

/** The README's `npm install` lines: package names, runtime and dev. */
export function installLines(): { dependencies: string[]; devDependencies: string[] } {
  const lines = [...README.matchAll(/^npm install (.+)$/gm)].map((m) => m[1].split(/\s+/));
  const dev = lines.filter((words) => words.includes('--save-dev'));
  const runtime = lines.filter((words) => !words.includes('--save-dev'));
  const names = (groups: string[][]) => groups.flat().filter((word) => !word.startsWith('-'));
  return { dependencies: names(runtime), devDependencies: names(dev) };
}

/** The version of a package this repo installed (the npm cache holds it). */
export function repoVersion(name: string): string {
  return (
    JSON.parse(readFileSync(join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

/**
 * Exact versions of what an app template needs and this repo does not install (the esm-app's vitest): within the
 * template's ranges, fetched from the registry on a fresh machine and from the npm cache after that. vite is pinned
 * beside vitest: vitest takes any Vite 6 to 8, and only Vite 8's transform (Oxc) emits decorator metadata.
 */
export const PINNED_VERSIONS: Readonly<Record<string, string>> = {
  vite: '8.3.8',
  vitest: '4.1.12',
  'vite-tsconfig-paths': '5.1.4',
};

/** Dependency entries at this repo's versions (or PINNED_VERSIONS), the library itself from the tarball. */
export function versions(names: string[], tarball: PackedTarball): Record<string, string> {
  return Object.fromEntries(
    names.map((name) => [
      name,
      name === 'nest-kafka-groups' ? `file:${tarball.path}` : (PINNED_VERSIONS[name] ?? repoVersion(name)),
    ]),
  );
}

/** Writes a file of the app, creating its folder. */
export function writeAppFile(appDir: string, path: string, text: string): void {
  mkdirSync(dirname(join(appDir, path)), { recursive: true });
  writeFileSync(join(appDir, path), text);
}

/** `npm install` in the app folder, from the local npm cache (no network once it holds the versions). */
export async function npmInstall(appDir: string): Promise<void> {
  await run('npm', ['install', ...NPM_FLAGS], { cwd: appDir });
}

/** The app's own TypeScript compiler. */
export async function appTsc(appDir: string, args: string[] = []): Promise<void> {
  await run(process.execPath, [join(appDir, 'node_modules', 'typescript', 'bin', 'tsc'), ...args], {
    cwd: appDir,
  }).catch((error: Error & { stdout?: string }) => {
    // tsc reports on stdout.
    throw new Error(`tsc ${args.join(' ')} failed in ${appDir}:\n${error.stdout ?? ''}\n${error.message}`);
  });
}

/**
 * Runs the app's own test runner (`node <args>` in `appDir`) with the quick start's environment: the test broker
 * and the orders topic and group. Resolves with its output whether the tests passed or not.
 */
export async function runAppTests(
  appDir: string,
  args: string[],
  orders: { topic: string; group: string },
): Promise<{ passed: boolean; output: string }> {
  const options = {
    cwd: appDir,
    timeout: 120_000,
    env: {
      PATH: process.env.PATH,
      NO_COLOR: '1',
      KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
      ORDERS_TOPIC: orders.topic,
      ORDERS_GROUP: orders.group,
    },
  };
  return run(process.execPath, args, options).then(
    ({ stdout, stderr }) => ({ passed: true, output: `${stdout}${stderr}` }),
    (error: Error & { stdout?: string; stderr?: string }) => ({
      passed: false,
      output: `${error.stdout ?? ''}${error.stderr ?? ''}\n${error.message}`,
    }),
  );
}

/** Fresh orders topic (2 partitions) and its dead-letter topic, and a fresh group, named after `prefix`. */
export async function ordersTopic(
  kafka: KafkaTestClient,
  prefix: string,
): Promise<{ topic: string; group: string }> {
  const topic = uniqueName(prefix);
  await kafka.createTopic(topic, 2);
  await kafka.createTopic(`${topic}-dlt`, 1);
  return { topic, group: uniqueName(prefix) };
}

/** The quick start's app built in `appDir`, running `dist/main.js`; collects the orders OrdersController logs. */
class OrdersApp {
  /** Started and not disposed: what `disposeOrdersApps` kills when a spec ends early. */
  static readonly running = new Set<OrdersApp>();
  readonly handled = new Set<string>();
  readonly exited: Promise<NodeJS.Signals | number | null>;
  private child?: ChildProcess;
  private text = '';

  constructor(appDir: string, env: { topic: string; group: string }) {
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: appDir,
      env: {
        PATH: process.env.PATH,
        NO_COLOR: '1',
        PORT: '0',
        KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
        ORDERS_TOPIC: env.topic,
        ORDERS_GROUP: env.group,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    OrdersApp.running.add(this);
    this.exited = new Promise((resolveExit) =>
      child.once('exit', (code, signal) => resolveExit(signal ?? code)),
    );
    const collect = (chunk: Buffer) => {
      this.text = (this.text + chunk.toString()).slice(-50_000);
      for (const match of chunk.toString().matchAll(/\[OrdersController\] order (\S+) x(\d+)/g))
        this.handled.add(match[1]);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
  }

  get output(): string {
    return this.text;
  }

  kill(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** Gone whatever happened. */
  dispose(): void {
    this.child?.kill('SIGKILL');
    this.child = undefined;
    OrdersApp.running.delete(this);
  }
}

/** For afterAll: kills an app a timed-out test left running. */
export function disposeOrdersApps(): void {
  for (const app of OrdersApp.running) app.dispose();
}

/**
 * The quick start's promise, with the app built in `appDir` on fresh topics: 20 orders handled, the invalid one
 * dead-lettered, everything committed, no ERROR line, and SIGTERM closes the app (members commit and leave) and
 * re-raises the signal.
 */
export async function expectOrdersHandled(
  kafka: KafkaTestClient,
  appDir: string,
  prefix: string,
): Promise<void> {
  const { topic, group } = await ordersTopic(kafka, prefix);
  const app = new OrdersApp(appDir, { topic, group });
  try {
    await ordersHandled(kafka, app, topic, group);
  } finally {
    app.dispose();
  }
}

async function ordersHandled(
  kafka: KafkaTestClient,
  app: OrdersApp,
  topic: string,
  group: string,
): Promise<void> {
  const orders = Array.from({ length: 20 }, (_, i) => ({ id: `o${i}`, quantity: i + 1 }));
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
    `the app to handle ${orders.length} orders (output: ${app.output.slice(-2_000)})`,
    60_000,
    () => app.handled.size >= orders.length,
  );
  await kafka.waitForCommittedToEnd(group, topic, 30_000);

  expect([...app.handled].sort()).toEqual(orders.map((o) => o.id).sort());
  const [deadLetter] = await kafka.readMessages(`${topic}-dlt`, 1);
  expect(JSON.parse(deadLetter.value!.toString())).toEqual({ id: 'bad', quantity: 0 });
  expect(deadLetter.headers?.['kafka_dlt-original-topic']?.toString()).toBe(topic);
  expect(app.output).not.toMatch(/\bERROR\b/);

  app.kill('SIGTERM');
  expect(await app.exited).toBe('SIGTERM');
}
