/**
 * Unit specs: pure logic only, beside the code (library and service), plus the test tooling's own specs (CI's
 * summary, the fault suite's verdicts). ESM mode because NestJS 12 is ESM-only.
 */
export default {
  rootDir: '.',
  roots: ['<rootDir>/src', '<rootDir>/scripts', '<rootDir>/test/faults', '<rootDir>/bench'],
  testRegex: '.*\\.spec\\.(ts|mjs)$',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
};
