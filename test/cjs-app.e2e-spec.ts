/**
 * A CommonJS Nest app, as `nest new` generates it when the CJS module system is chosen (no `"type"` in its
 * package.json; the CLI template's tsconfig.json and tsconfig.build.json, read from the installed
 * @nestjs/schematics), installs the packed ESM-only library and uses it: the README's quick start files with its
 * CommonJS main.ts, compiled by the app's own tsc with the template's settings, run with `node dist/main.js` (Node
 * loads the library, like Nest 12 itself, through require() of ES modules). Also: the type declarations of every
 * entry point resolve under the template's `nodenext` and under the older `"moduleResolution": "node"` (node10,
 * which ignores `exports`), and every entry point loads through require() (no top-level await in its graph).
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KafkaTestClient, uniqueName } from 'nest-kafka-groups/testing';
import {
  appTsc,
  expectOrdersHandled,
  installLines,
  npmInstall,
  OrdersApp,
  PACKAGE_DIR,
  packLibrary,
  readmeFiles,
  REPO,
  run,
  Steps,
  versions,
} from './support/packed-app.js';

const TEMPLATE = join(
  REPO,
  'node_modules',
  '@nestjs',
  'schematics',
  'dist',
  'lib',
  'application',
  'files',
  'ts',
);

/** A template file as `nest new --type cjs --strict` renders it (the only placeholders these files have). */
function templateFile(name: string): string {
  const rendered = readFileSync(join(TEMPLATE, name), 'utf8')
    .replaceAll('<%= strict %>', 'true')
    .replaceAll('<%= specFileSuffix %>', 'spec');
  expect(rendered).not.toContain('<%');
  return rendered;
}

/** The library's subpath entry points, from its exports map ('./health', ...). */
function subpaths(): string[] {
  const { exports } = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
    exports: Record<string, unknown>;
  };
  return Object.keys(exports).filter((key) => key !== '.' && key !== './package.json');
}

describe('a CommonJS Nest 12 app (the CLI template) installs the packed package', () => {
  const kafka = new KafkaTestClient();
  const workDir = mkdtempSync(join(tmpdir(), 'nkg-cjs-app-'));
  let app: OrdersApp | undefined;

  afterAll(async () => {
    app?.dispose();
    await kafka.closeAll();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('every entry point loads through require()', async () => {
    const names = ['nest-kafka-groups', ...subpaths().map((path) => `nest-kafka-groups${path.slice(1)}`)];
    expect(names.length).toBeGreaterThan(1);
    // A plain CommonJS process from the repo root, where the optional peers are installed.
    const { stdout } = await run(
      process.execPath,
      [
        '-e',
        `for (const name of ${JSON.stringify(names)}) console.log(name, Object.keys(require(name)).length)`,
      ],
      { cwd: REPO },
    );
    const loaded = stdout.trim().split('\n');
    expect(loaded.map((line) => line.split(' ')[0])).toEqual(names);
    for (const line of loaded) expect(Number(line.split(' ')[1])).toBeGreaterThan(0);
  });

  test('the template tsconfig, tsc, node dist/main.js: messages handled and committed, clean shutdown', async () => {
    const steps = new Steps();
    const tarball = await steps.step('pack', () => packLibrary(workDir));
    const appDir = join(workDir, 'app');

    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(appDir, path)), { recursive: true });
      writeFileSync(join(appDir, path), text);
    };
    const tsconfig = templateFile('tsconfig.json');
    // What this spec is about: the template compiles to CommonJS (no "type" in its package.json).
    expect(JSON.parse(tsconfig)).toMatchObject({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' },
    });
    expect(readFileSync(join(TEMPLATE, 'package.json'), 'utf8')).not.toMatch(/"type"\s*:/);
    write('tsconfig.json', tsconfig);
    write('tsconfig.build.json', templateFile('tsconfig.build.json'));
    // The README's CommonJS variant: its main.ts, and relative imports without `.js` as the template writes them.
    const files = readmeFiles('CommonJS');
    files.delete('tsconfig.json');
    expect([...files.keys()].sort()).toEqual([
      'src/app.module.ts',
      'src/main.ts',
      'src/orders/order.dto.ts',
      'src/orders/orders.controller.ts',
      'src/orders/orders.module.ts',
    ]);
    expect(files.get('src/main.ts')).not.toMatch(/^await /m);
    for (const [path, text] of files) write(path, text.replace(/(from '\.{1,2}\/[^']*)\.js'/g, "$1'"));
    // Every subpath's types, compiled but not loaded by main.ts (their optional peers are not installed).
    write(
      'src/entry-points.ts',
      subpaths()
        .map((path, i) => `import * as entry${i} from 'nest-kafka-groups${path.slice(1)}';\n`)
        .join('') +
        `export const entryPoints = [${subpaths()
          .map((_, i) => `entry${i}`)
          .join(', ')}];\n`,
    );
    // A tsconfig of the older template (CommonJS with node10 resolution, deprecated in TypeScript 6).
    write(
      'tsconfig.node10.json',
      JSON.stringify({
        extends: './tsconfig.build.json',
        compilerOptions: {
          module: 'commonjs',
          moduleResolution: 'node',
          resolvePackageJsonExports: false,
          ignoreDeprecations: '6.0',
          noEmit: true,
        },
      }),
    );

    const { dependencies, devDependencies } = installLines();
    // The template's tsconfig names the jest types; its package.json has no "type" (CommonJS).
    write(
      'package.json',
      JSON.stringify({
        name: 'cjs-app',
        private: true,
        dependencies: versions(dependencies, tarball),
        devDependencies: versions([...devDependencies, '@types/jest'], tarball),
      }),
    );
    await steps.step('install', () => npmInstall(appDir));

    await steps.step('tsc', () => appTsc(appDir, ['-p', 'tsconfig.build.json']));
    expect(readFileSync(join(appDir, 'dist', 'main.js'), 'utf8')).toContain('require("nest-kafka-groups")');
    await steps.step('tsc node10', () => appTsc(appDir, ['-p', 'tsconfig.node10.json']));

    const topic = uniqueName('cjs-orders');
    const group = uniqueName('cjs-orders');
    await kafka.createTopic(topic, 2);
    await kafka.createTopic(`${topic}-dlt`, 1);
    app = new OrdersApp(appDir, { topic, group });
    await steps.step('consume', () => expectOrdersHandled(kafka, app!, topic, group));
    app = undefined;
    console.log(`cjs app (Node ${process.version}): ${steps.timings.join(', ')}`);
  });
});
