/**
 * Unit specs: pure logic only, beside the code (library and service), plus the test tooling's own specs (CI's
 * summary, the fault suite's verdicts, the benchmark's self-check). ESM mode because NestJS 12 is ESM-only. The library's specs run with its
 * own config (packages/nest-kafka-groups/jest.config.mjs); the service's and the tooling's here.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export default {
  // A hang guard, not a speed check: pure-logic specs wait for nothing outside the process, so only a spec that
  // never ends should reach it, however busy the machine (speed is the benchmark's to measure).
  testTimeout: 60_000,
  projects: [
    join(here, 'packages/nest-kafka-groups/jest.config.mjs'),
    {
      displayName: 'example',
      rootDir: here,
      roots: ['<rootDir>/src', '<rootDir>/scripts', '<rootDir>/test/faults', '<rootDir>/bench'],
      testRegex: '.*\\.spec\\.(ts|mjs)$',
      testEnvironment: 'node',
      extensionsToTreatAsEsm: ['.ts'],
      moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1', ...librarySources('<rootDir>') },
      transform: {
        '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
      },
    },
  ],
};

/**
 * Specs import the library by its package name (and subpaths) and run against its sources, so they need no
 * library build.
 */
export function librarySources(root) {
  return {
    '^nest-kafka-groups$': `${root}/packages/nest-kafka-groups/src/index.ts`,
    '^nest-kafka-groups/(health|metrics|testing|tracing|ui)$': `${root}/packages/nest-kafka-groups/src/$1/index.ts`,
  };
}
