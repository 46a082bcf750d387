/**
 * Mutation testing of the library's pure units (`npm run test:mutation`): StrykerJS changes one thing at a time
 * in these files and runs the library's unit specs; a change no spec notices is a survivor (docs/TESTING.md).
 * Jest runs in ESM mode with the library's own config. Not part of CI: it takes minutes (figure in docs/TESTING.md).
 */
import library from './packages/nest-kafka-groups/jest.config.mjs';

const PACKAGE = 'packages/nest-kafka-groups';
const SRC = `${PACKAGE}/src`;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  testRunnerNodeArgs: ['--experimental-vm-modules'],
  jest: {
    projectType: 'custom',
    // The library's config, with its paths taken from the repository root (where Stryker runs).
    config: {
      ...library,
      rootDir: PACKAGE,
      roots: ['<rootDir>/src'],
      transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }] },
    },
    enableFindRelatedTests: true,
  },
  coverageAnalysis: 'perTest',
  // A mutant of a module-level value runs every spec; they are left out (Ignored, outside the score).
  ignoreStatic: true,
  mutate: [
    `${SRC}/kafka.options.ts`,
    `${SRC}/retry/backoff.ts`,
    `${SRC}/retry/failure-classifier.ts`,
    `${SRC}/server/failure-policy.ts`,
    `${SRC}/server/group-plan.ts`,
    `${SRC}/assignors/*.ts`,
    `!${SRC}/**/*.spec.ts`,
    `${SRC}/dead-letter/dead-letter-headers.ts`,
    `${SRC}/client/kafkajs-log-level.ts`,
  ],
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, reportTests: false, reportMutants: false },
  // Below 80 % killed (Killed + Timeout over every valid mutant) the run fails.
  thresholds: { high: 90, low: 80, break: 80 },
  concurrency: 2,
  // Stryker restarts a worker after a timeout, and the restarted worker's first jest run is a cold start: on a
  // loaded machine a cold start took longer than a short timeout, so every later mutant timed out too.
  timeoutMS: 30_000,
  tempDirName: '.stryker-tmp',
  // Not needed by the unit specs; per-file runs (scripts/mutation.mjs) keep their sandboxes in .stryker-tmp-<file>.
  ignorePatterns: ['/.stryker-tmp*', '/.kafka', '/reports', '/dist', '/dist-faults', '/bench/results'],
  cleanTempDir: 'always',
};
