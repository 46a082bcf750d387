/**
 * Jest setup for the e2e specs: a passing test prints no ERROR line it did not ask for. Every ERROR a Nest logger
 * prints in the test's process is collected; a test that provokes errors on purpose declares them with
 * `expectErrorLines(/pattern/, ...)`, and any other ERROR line fails the test after it ran.
 */
import { afterEach, beforeEach, jest } from '@jest/globals';
import { ConsoleLogger } from '@nestjs/common';

let seen: string[] = [];
let declared: RegExp[] = [];
let spy: { mockRestore(): void } | undefined;

/** ERROR lines this test provokes on purpose (each pattern may match any number of lines). */
export function expectErrorLines(...patterns: RegExp[]): void {
  declared.push(...patterns);
}

/** The ERROR lines printed so far in this test. */
export function errorLinesSoFar(): readonly string[] {
  return seen;
}

beforeEach(() => {
  seen = [];
  declared = [];
  const original = ConsoleLogger.prototype.error;
  spy = jest.spyOn(ConsoleLogger.prototype, 'error').mockImplementation(function (
    this: ConsoleLogger,
    ...args: unknown[]
  ) {
    seen.push(args.map((arg) => (arg instanceof Error ? arg.message : String(arg))).join(' '));
    return (original as (...a: unknown[]) => void).apply(this, args);
  });
});

afterEach(() => {
  spy?.mockRestore();
  spy = undefined;
  const unexpected = seen.filter((line) => !declared.some((pattern) => pattern.test(line)));
  seen = [];
  if (unexpected.length > 0) {
    throw new Error(
      `${unexpected.length} unexpected ERROR line(s); a test that provokes them declares them with expectErrorLines():\n` +
        unexpected.map((line) => `  ${line.slice(0, 300)}`).join('\n'),
    );
  }
});
