/**
 * Mutation testing of the library's pure units (`npm run test:mutation`): StrykerJS changes one thing at a time
 * in these files and runs their unit specs; a change no spec notices is a survivor (see docs/TESTING.md).
 * Jest runs in ESM mode as in jest.config.mjs. Not part of CI: it takes minutes (figure in docs/TESTING.md).
 */
import unit from './jest.config.mjs';

const LIBRARY = 'src/kafka';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  testRunnerNodeArgs: ['--experimental-vm-modules'],
  jest: {
    projectType: 'custom',
    // Only the library's own specs: the units below are covered there.
    config: { ...unit, roots: [`<rootDir>/${LIBRARY}`] },
    enableFindRelatedTests: true,
  },
  coverageAnalysis: 'perTest',
  mutate: [
    `${LIBRARY}/kafka.options.ts`,
    `${LIBRARY}/retry/backoff.ts`,
    `${LIBRARY}/retry/failure-classifier.ts`,
    `${LIBRARY}/server/failure-policy.ts`,
    `${LIBRARY}/server/group-plan.ts`,
    `${LIBRARY}/assignors/*.ts`,
    `!${LIBRARY}/assignors/*.spec.ts`,
    `${LIBRARY}/dead-letter/dead-letter-headers.ts`,
    `${LIBRARY}/client/kafkajs-log-level.ts`,
  ],
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, reportTests: false, reportMutants: false },
  // Below 80 % killed (Killed + Timeout over every valid mutant) the run fails.
  thresholds: { high: 90, low: 80, break: 80 },
  concurrency: 2,
  timeoutMS: 10_000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
