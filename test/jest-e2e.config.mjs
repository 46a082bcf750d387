import { librarySources } from '../jest.config.mjs';

/** e2e specs against a real broker, in band (parallel workers starve heartbeats on 2 cores). */
export default {
  rootDir: '..',
  roots: ['<rootDir>/test'],
  testRegex: '.*\\.e2e-spec\\.ts$',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1', ...librarySources('<rootDir>') },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  // A passing test prints no ERROR line it did not declare (see test/support/error-lines.ts).
  setupFilesAfterEnv: ['<rootDir>/test/support/error-lines.ts'],
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 120000,
  maxWorkers: 1,
};
