/** Unit specs: beside the code, pure logic only. ESM mode because NestJS 12 is ESM-only. The library's specs run
 * with its own config; the example service's here. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export default {
  projects: [
    join(here, 'packages/nest-kafka-groups/jest.config.mjs'),
    {
      displayName: 'example',
      rootDir: join(here, 'src'),
      testRegex: '.*\\.spec\\.ts$',
      testEnvironment: 'node',
      extensionsToTreatAsEsm: ['.ts'],
      moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1', ...librarySources() },
      transform: {
        '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/../tsconfig.json' }],
      },
    },
  ],
};

/** Specs import the library by its package name and run against its sources, so they need no library build. */
export function librarySources(root = '<rootDir>/..') {
  return { '^nest-kafka-groups$': `${root}/packages/nest-kafka-groups/src/index.ts` };
}
