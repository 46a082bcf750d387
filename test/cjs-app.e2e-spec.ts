/**
 * A CommonJS Nest app, as `nest new` generates it when the CJS module system is chosen (no `"type"` in its
 * package.json; the CLI template's tsconfig.json and tsconfig.build.json, read from the installed
 * @nestjs/schematics), installs the packed ESM-only library and uses it: the README's quick start files with its
 * CommonJS main.ts, compiled by the app's own tsc with the template's settings, run with `node dist/main.js` (Node
 * loads the library, like Nest 12 itself, through require() of ES modules). Also: the type declarations of every
 * entry point resolve under the template's `nodenext` and under the older `"moduleResolution": "node"` (node10,
 * which ignores `exports`), every entry point loads through require() (no top-level await in its graph), and, where
 * Jest can require() ES modules (Node 24.9+), the template's Jest e2e setup runs the app's module with a group.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { KafkaTestClient, uniqueName } from 'nest-kafka-groups/testing';
import {
  appTsc,
  disposeOrdersApps,
  expectOrdersHandled,
  installLines,
  npmInstall,
  PACKAGE_DIR,
  packLibrary,
  QUICK_START_SOURCES,
  readmeFiles,
  REPO,
  run,
  runAppTests,
  Steps,
  versions,
  writeAppFile,
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

/** Jest's own test for require() of ES modules (jest-runtime's supportsSyncEvaluate). */
const JEST_REQUIRES_ESM =
  typeof (vm as { SourceTextModule?: { prototype: { hasAsyncGraph?: unknown } } }).SourceTextModule?.prototype
    .hasAsyncGraph === 'function';

/** The template's test/app.e2e-spec.ts, for this app: its module with the library, one group joined. */
const APP_E2E_SPEC = `import { Test, TestingModule } from '@nestjs/testing';
import { INestApplication } from '@nestjs/common';
import { KafkaGroupsServer } from 'nest-kafka-groups';
import { KafkaTestClient } from 'nest-kafka-groups/testing';
import { AppModule } from './../src/app.module';

describe('AppModule (e2e)', () => {
  const kafka = new KafkaTestClient();
  let app: INestApplication;

  beforeEach(async () => {
    const moduleFixture: TestingModule = await Test.createTestingModule({
      imports: [AppModule],
    }).compile();
    app = moduleFixture.createNestApplication();
    app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) });
    await app.init();
    await app.startAllMicroservices();
  });

  it('joins the orders group', async () => {
    expect(app.get(KafkaGroupsServer)).toBeInstanceOf(KafkaGroupsServer);
    await kafka.waitForStableGroup(process.env.ORDERS_GROUP!, 1);
  });

  afterEach(async () => {
    await app.close();
  });

  afterAll(() => kafka.closeAll());
});
`;

describe('a CommonJS Nest 12 app (the CLI template) installs the packed package', () => {
  const kafka = new KafkaTestClient();
  const workDir = mkdtempSync(join(tmpdir(), 'nkg-cjs-app-'));
  const appDir = join(workDir, 'app');
  const steps = new Steps();

  const write = (path: string, text: string) => writeAppFile(appDir, path, text);

  // `nest new --type cjs` with the README's files, installed and built as `npm run build` builds it.
  beforeAll(async () => {
    const tarball = await steps.step('pack', () => packLibrary(workDir));
    const tsconfig = templateFile('tsconfig.json');
    // What this spec is about: the template compiles to CommonJS (no "type" in its package.json).
    expect(JSON.parse(tsconfig)).toMatchObject({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' },
    });
    expect(readFileSync(join(TEMPLATE, 'package.json'), 'utf8')).not.toMatch(/"type"\s*:/);
    write('tsconfig.json', tsconfig);
    write('tsconfig.build.json', templateFile('tsconfig.build.json'));
    write('test/jest-e2e.json', templateFile('test/jest-e2e.json'));
    // The README's CommonJS variant: its main.ts, and relative imports without `.js` as the template writes them.
    const files = readmeFiles('CommonJS');
    files.delete('tsconfig.json');
    expect([...files.keys()].sort()).toEqual(QUICK_START_SOURCES);
    expect(files.get('src/main.ts')).not.toMatch(/^await /m);
    for (const [path, text] of files) write(path, text.replace(/(from '\.{1,2}\/[^']*)\.js'/g, "$1'"));

    // Every subpath's types, compiled with the app; main.ts does not load them (their optional peers are absent).
    write(
      'src/entry-points.ts',
      subpaths()
        .map((path, i) => `import * as entry${i} from 'nest-kafka-groups${path.slice(1)}';\n`)
        .join('') +
        `export const entryPoints = [${subpaths()
          .map((_, i) => `entry${i}`)
          .join(', ')}];\n`,
    );

    const { dependencies, devDependencies } = installLines();
    // The template's tsconfig names the jest types; Jest itself only where it can require() ES modules.
    const testing = JEST_REQUIRES_ESM ? ['jest', 'ts-jest', '@nestjs/testing'] : [];
    write(
      'package.json',
      JSON.stringify({
        name: 'cjs-app',
        private: true,
        dependencies: versions(dependencies, tarball),
        devDependencies: versions([...devDependencies, '@types/jest', ...testing], tarball),
      }),
    );
    await steps.step('install', () => npmInstall(appDir));
    await steps.step('tsc', () => appTsc(appDir, ['-p', 'tsconfig.build.json']));
    expect(readFileSync(join(appDir, 'dist', 'main.js'), 'utf8')).toContain('require("nest-kafka-groups")');
  }, 300_000);

  afterAll(async () => {
    disposeOrdersApps();
    await kafka.closeAll();
    rmSync(workDir, { recursive: true, force: true });
    console.log(`cjs app (Node ${process.version}): ${steps.timings.join(', ')}`);
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

  test("every entry point's types under node10 resolution too, which ignores the exports map", async () => {
    // A tsconfig of the older template: CommonJS with node10 resolution, deprecated in TypeScript 6.
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
    await steps.step('tsc node10', () => appTsc(appDir, ['-p', 'tsconfig.node10.json']));
  });

  test('node dist/main.js: messages handled, dead-lettered and committed, clean shutdown', async () => {
    await steps.step('consume', () => expectOrdersHandled(kafka, appDir, 'cjs-orders'));
  });

  // Jest runs a CommonJS app's tests with its own require(), which loads ES modules (NestJS's as this package) only
  // where Node's vm module can evaluate them synchronously (Node 24.9+).
  (JEST_REQUIRES_ESM ? test : test.skip)(
    "the template's Jest e2e setup: the app's module with the library, a group joined, closed",
    async () => {
      write('test/app.e2e-spec.ts', APP_E2E_SPEC);
      const { passed, output } = await steps.step('app jest', () =>
        runAppTests(
          appDir,
          ['--experimental-vm-modules', 'node_modules/jest/bin/jest.js', '--config', './test/jest-e2e.json'],
          { topic: uniqueName('cjs-jest'), group: uniqueName('cjs-jest') },
        ),
      );
      expect(output).toMatch(/Tests:\s+1 passed, 1 total/);
      expect(passed).toBe(true);
    },
  );
});
