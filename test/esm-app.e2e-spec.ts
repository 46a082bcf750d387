/**
 * The app `nest new` generates by default (Nest 12: ES modules, `"type": "module"`, vitest), made by this repo's
 * own Nest CLI (`nest new --skip-install`, so the installed @nestjs/schematics renders its ts-esm template), with
 * the package README's quick start files and the packed library installed: built by the template's own build
 * (`nest build`) and run with `node dist/main.js`; then the template's own vitest e2e config runs a test that boots
 * the app's module with its group, compiled by vitest's transform instead of tsc. That transform must emit decorator
 * metadata, or Nest's injection by type and ValidationPipe's DTO type vanish without a word: the test checks both,
 * and the same test under a transform without metadata (esbuild's behaviour, which vitest used before Vite 8) must
 * fail, with the library's start-up error naming the handler.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaTestClient } from 'nest-kafka-groups/testing';
import {
  disposeOrdersApps,
  expectOrdersHandled,
  installLines,
  npmInstall,
  ordersTopic,
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

/** What the app installs of the template's devDependencies: its build, its e2e tests and the types its tsconfig names. */
const TEMPLATE_DEV_DEPENDENCIES = [
  '@nestjs/cli',
  '@nestjs/testing',
  '@types/node',
  'typescript',
  'vitest',
  'vite-tsconfig-paths',
];

/**
 * The template's test/app.e2e-spec.ts, for this app: its module with the library, started as main.ts starts it.
 * OrdersProbe is injected by type (only its constructor's metadata names KafkaProducer); the invalid order reaches
 * the dead-letter topic only if ValidationPipe knows the handler's DTO, from the handler's metadata.
 */
const APP_E2E_SPEC = `import { Test, TestingModule } from '@nestjs/testing';
import { INestApplication, Injectable, ValidationPipe } from '@nestjs/common';
import { KafkaGroupsServer, KafkaProducer } from 'nest-kafka-groups';
import { KafkaTestClient } from 'nest-kafka-groups/testing';
import { AppModule } from './../src/app.module.js';

@Injectable()
class OrdersProbe {
  constructor(readonly producer: KafkaProducer) {}
}

describe('AppModule (e2e)', () => {
  const kafka = new KafkaTestClient();
  const topic = process.env.ORDERS_TOPIC!;
  const group = process.env.ORDERS_GROUP!;
  let app: INestApplication;

  beforeEach(async () => {
    const moduleFixture: TestingModule = await Test.createTestingModule({
      imports: [AppModule],
      providers: [OrdersProbe],
    }).compile();
    app = moduleFixture.createNestApplication();
    app.useGlobalPipes(new ValidationPipe({ transform: true }));
    app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
    await app.init();
  });

  it('injects providers by type', () => {
    expect(app.get(OrdersProbe).producer).toBe(app.get(KafkaProducer));
  });

  it('validates the OrderDto: the invalid order dead-lettered, every order committed', async () => {
    await app.startAllMicroservices();
    await kafka.waitForStableGroup(group, 1);
    await kafka.produceKeyed(topic, 10, (i) => \`k\${i % 5}\`, (i) => ({ id: \`o\${i}\`, quantity: i + 1 }));
    await kafka.produce(topic, [{ key: 'bad', value: JSON.stringify({ id: 'bad', quantity: 0 }) }]);
    await kafka.waitForCommittedToEnd(group, topic);
    const [deadLetter] = await kafka.readMessages(\`\${topic}-dlt\`, 1);
    expect(JSON.parse(deadLetter.value!.toString())).toEqual({ id: 'bad', quantity: 0 });
  }, 60_000);

  afterEach(async () => {
    await app.close();
  });

  afterAll(() => kafka.closeAll());
});
`;

/** The template's e2e config with Oxc's decorator metadata off: what esbuild (Vite 7 and older) emits. */
const NO_METADATA_CONFIG = `import { defineConfig, mergeConfig } from 'vitest/config';
import e2e from './vitest.config.e2e.js';

export default mergeConfig(
  e2e,
  defineConfig({ oxc: { decorator: { legacy: true, emitDecoratorMetadata: false } } }),
);
`;

describe('the app `nest new` generates by default (ESM, vitest) installs the packed package', () => {
  const kafka = new KafkaTestClient();
  const workDir = mkdtempSync(join(tmpdir(), 'nkg-esm-app-'));
  const appDir = join(workDir, 'esm-app');
  const steps = new Steps();
  let scripts: Record<string, string>;

  /** The app's vitest, as its package.json script `name` runs it (`vitest run ...`). */
  const vitestArgs = (name: string): string[] => {
    const [command, ...args] = scripts[name].split(' ');
    expect(command).toBe('vitest');
    return [join('node_modules', 'vitest', 'vitest.mjs'), ...args];
  };

  beforeAll(async () => {
    const tarball = await steps.step('pack', () => packLibrary(workDir));
    await steps.step('nest new', () =>
      run(
        process.execPath,
        [
          join(REPO, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js'),
          'new',
          'esm-app',
          '--skip-install',
          '--skip-git',
          '--package-manager',
          'npm',
          '--no-observe',
        ],
        { cwd: workDir },
      ),
    );
    const generated = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as {
      type?: string;
      scripts: Record<string, string>;
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    // What this spec is about: the ESM template with vitest, whose tsconfig asks for decorator metadata.
    expect(generated.type).toBe('module');
    expect(generated.scripts).toMatchObject({
      build: 'nest build',
      'test:e2e': 'vitest run --config ./vitest.config.e2e.ts',
    });
    expect(Object.keys(generated.devDependencies)).toEqual(expect.arrayContaining(TEMPLATE_DEV_DEPENDENCIES));
    expect(JSON.parse(readFileSync(join(appDir, 'tsconfig.json'), 'utf8'))).toMatchObject({
      compilerOptions: { module: 'nodenext', emitDecoratorMetadata: true, experimentalDecorators: true },
    });
    expect(existsSync(join(appDir, 'vitest.config.e2e.ts'))).toBe(true);
    scripts = generated.scripts;

    // The quick start's files over the template's (its app.module.ts and main.ts); the template's tsconfig stays.
    const files = readmeFiles();
    files.delete('tsconfig.json');
    expect([...files.keys()].sort()).toEqual(QUICK_START_SOURCES);
    for (const [path, text] of files) writeAppFile(appDir, path, text);

    const { dependencies, devDependencies } = installLines();
    writeAppFile(
      appDir,
      'package.json',
      JSON.stringify({
        ...generated,
        dependencies: versions(
          [...new Set([...Object.keys(generated.dependencies), ...dependencies])],
          tarball,
        ),
        devDependencies: versions(
          [...new Set([...TEMPLATE_DEV_DEPENDENCIES, 'vite', ...devDependencies])],
          tarball,
        ),
      }),
    );
    await steps.step('install', () => npmInstall(appDir));
    await steps.step('nest build', () =>
      run(process.execPath, [join('node_modules', '@nestjs', 'cli', 'bin', 'nest.js'), 'build'], {
        cwd: appDir,
      }).catch((error: Error & { stdout?: string }) => {
        throw new Error(`nest build failed in ${appDir}:\n${error.stdout ?? ''}\n${error.message}`);
      }),
    );
    expect(readFileSync(join(appDir, 'dist', 'main.js'), 'utf8')).toMatch(
      /^import \{ KafkaGroupsServer \} from 'nest-kafka-groups';$/m,
    );
  }, 300_000);

  afterAll(async () => {
    disposeOrdersApps();
    await kafka.closeAll();
    rmSync(workDir, { recursive: true, force: true });
    console.log(`esm app (Node ${process.version}): ${steps.timings.join(', ')}`);
  });

  test('node dist/main.js: messages handled, dead-lettered and committed, clean shutdown', async () => {
    await steps.step('consume', () => expectOrdersHandled(kafka, appDir, 'esm-orders'));
  });

  test("the template's vitest e2e config: injection by type and the DTO's validation work", async () => {
    writeAppFile(appDir, 'test/app.e2e-spec.ts', APP_E2E_SPEC);
    const orders = await ordersTopic(kafka, 'esm-vitest');
    const { passed, output } = await steps.step('vitest', () =>
      runAppTests(appDir, vitestArgs('test:e2e'), orders),
    );
    expect(output).toMatch(/Tests\s+2 passed \(2\)/);
    expect(passed).toBe(true);
  });

  test('the same tests without decorator metadata fail: no injection, and the handler is a start-up error', async () => {
    writeAppFile(appDir, 'test/app.e2e-spec.ts', APP_E2E_SPEC);
    writeAppFile(appDir, 'vitest.config.no-metadata.ts', NO_METADATA_CONFIG);
    const orders = await ordersTopic(kafka, 'esm-no-metadata');
    const { passed, output } = await steps.step('vitest without metadata', () =>
      runAppTests(
        appDir,
        [join('node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', './vitest.config.no-metadata.ts'],
        orders,
      ),
    );
    expect(passed).toBe(false);
    expect(output).toMatch(/Tests\s+2 failed \(2\)/);
    expect(output).toMatch(/expected undefined to be KafkaProducer/);
    expect(output).toMatch(
      /KafkaDecoratorMetadataError: OrdersController\.handle has no decorator metadata \(design:paramtypes\)/,
    );
  });
});
