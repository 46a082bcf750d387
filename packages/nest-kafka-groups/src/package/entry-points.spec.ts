import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = JSON.parse(readFileSync(join(SRC, '..', 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|\bimport\('([^']+)'\)/g;

/** Every bare module specifier the entry's module graph imports at run time (type-only imports erase). */
function runtimeImports(entry: string, seen = new Set<string>()): Set<string> {
  const bare = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      if (/^\s*(?:import|export)\s+type\b/.test(match[0].trimStart())) continue;
      const specifier = match[1] ?? match[2] ?? match[3];
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else bare.add(specifier);
    }
  };
  visit(join(SRC, entry));
  return bare;
}

const packageOf = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

describe('entry points (package.json exports)', () => {
  const optionalPeers = Object.keys(PACKAGE.peerDependenciesMeta).filter(
    (name) => PACKAGE.peerDependenciesMeta[name].optional,
  );

  test('the optional peers are @nestjs/terminus, @opentelemetry/api, class-transformer, class-validator and prom-client', () => {
    expect(optionalPeers.sort()).toEqual([
      '@nestjs/terminus',
      '@opentelemetry/api',
      'class-transformer',
      'class-validator',
      'prom-client',
    ]);
  });

  test('the root entry loads neither optional peer', () => {
    const packages = [...runtimeImports('index.ts')].map(packageOf);
    expect(packages).toContain('@nestjs/common');
    expect(packages).toContain('kafkajs');
    for (const peer of optionalPeers) expect(packages).not.toContain(peer);
  });

  test('each optional peer is loaded by its own subpath only', () => {
    expect([...runtimeImports('health/index.ts')].map(packageOf)).toContain('@nestjs/terminus');
    expect([...runtimeImports('health/index.ts')].map(packageOf)).not.toContain('prom-client');
    expect([...runtimeImports('metrics/index.ts')].map(packageOf)).toContain('prom-client');
    expect([...runtimeImports('metrics/index.ts')].map(packageOf)).not.toContain('@nestjs/terminus');
    const tracing = [...runtimeImports('tracing/index.ts')].map(packageOf);
    expect(tracing).toContain('@opentelemetry/api');
    expect(tracing).not.toContain('prom-client');
    expect(tracing).not.toContain('@nestjs/terminus');
    const validation = [...runtimeImports('validation/index.ts')].map(packageOf);
    expect(validation).toEqual(expect.arrayContaining(['class-validator', 'class-transformer']));
    expect(validation).not.toContain('prom-client');
    expect(validation).not.toContain('@opentelemetry/api');
    for (const entry of [
      'index.ts',
      'health/index.ts',
      'metrics/index.ts',
      'tracing/index.ts',
      'ui/index.ts',
    ]) {
      const packages = [...runtimeImports(entry)].map(packageOf);
      expect([entry, packages.filter((name) => name.startsWith('class-'))]).toEqual([entry, []]);
    }
  });

  test('the root entry loads no file of the live page (nest-kafka-groups/ui)', () => {
    const files = new Set<string>();
    runtimeImports('index.ts', files);
    expect(files.size).toBeGreaterThan(10);
    expect([...files].filter((file) => file.startsWith(join(SRC, 'ui')))).toEqual([]);
    runtimeImports('ui/index.ts', files);
    expect([...files].some((file) => file.startsWith(join(SRC, 'ui')))).toBe(true);
  });

  test('every subpath of the exports map has a source entry and points at dist with types', () => {
    for (const [subpath, target] of Object.entries(PACKAGE.exports)) {
      if (subpath === './package.json') continue;
      const entry = subpath === '.' ? 'index' : `${subpath.slice(2)}/index`;
      expect(target).toEqual({ types: `./dist/${entry}.d.ts`, default: `./dist/${entry}.js` });
      expect(() => readFileSync(join(SRC, `${entry}.ts`))).not.toThrow();
    }
  });
});
