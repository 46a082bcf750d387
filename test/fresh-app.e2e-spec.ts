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
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KafkaTestClient } from 'nest-kafka-groups/testing';
import {
  appTsc,
  disposeOrdersApps,
  expectOrdersHandled,
  installLines,
  npmInstall,
  packLibrary,
  QUICK_START_SOURCES,
  readmeFiles,
  Steps,
  versions,
} from './support/packed-app.js';

describe('a fresh Nest 12 app installs the packed package', () => {
  const kafka = new KafkaTestClient();
  const workDir = mkdtempSync(join(tmpdir(), 'nkg-fresh-app-'));

  afterAll(async () => {
    disposeOrdersApps();
    await kafka.closeAll();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('the README quick start, from npm pack to handled and committed messages', async () => {
    const steps = new Steps();
    const tarball = await steps.step('pack', () => packLibrary(workDir));
    expect(tarball.files.some((f) => /\.spec\.|\.map$|^src\//.test(f.path))).toBe(false);

    const appDir = join(workDir, 'app');
    const files = readmeFiles();
    expect([...files.keys()].sort()).toEqual([...QUICK_START_SOURCES, 'tsconfig.json']);
    for (const [path, text] of files) {
      mkdirSync(dirname(join(appDir, path)), { recursive: true });
      writeFileSync(join(appDir, path), text);
    }
    const { dependencies, devDependencies } = installLines();
    expect(dependencies).toContain('nest-kafka-groups');
    for (const optional of ['@nestjs/terminus', 'prom-client']) expect(dependencies).not.toContain(optional);
    // What `npm init -y && npm pkg set type=module` and the README's two installs leave, installed in one go.
    writeFileSync(
      join(appDir, 'package.json'),
      JSON.stringify({
        name: 'fresh-app',
        private: true,
        type: 'module',
        dependencies: versions(dependencies, tarball),
        devDependencies: versions(devDependencies, tarball),
      }),
    );
    await steps.step('install', () => npmInstall(appDir));
    // The package's own dependency and no optional peer, and no copy of this repo's sources.
    expect(existsSync(join(appDir, 'node_modules', 'kafkajs', 'package.json'))).toBe(true);
    expect(existsSync(join(appDir, 'node_modules', '@nestjs', 'terminus'))).toBe(false);
    expect(existsSync(join(appDir, 'node_modules', 'prom-client'))).toBe(false);
    expect(existsSync(join(appDir, 'node_modules', 'nest-kafka-groups', 'src'))).toBe(false);

    await steps.step('tsc', () => appTsc(appDir));

    await steps.step('consume', () => expectOrdersHandled(kafka, appDir, 'fresh-orders'));
    console.log(
      `fresh app: ${steps.timings.join(', ')}; tarball ${tarball.filename}, ${tarball.files.length} files`,
    );
    // npm install and tsc of a whole app take minutes on a busy machine; the waits for the broker keep their own.
  }, 300_000);
});
