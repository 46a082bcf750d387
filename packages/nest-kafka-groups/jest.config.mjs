/** The library's unit specs: beside the code, pure logic only. ESM mode because NestJS 12 is ESM-only. */
export default {
  displayName: 'nest-kafka-groups',
  // A hang guard, not a speed check (run on its own; the root config sets the same for the whole unit suite).
  testTimeout: 60_000,
  rootDir: 'src',
  testRegex: '.*\\.spec\\.ts$',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/../tsconfig.json' }],
  },
};
