import { describe, expect, test } from '@jest/globals';
import { printable, printableStack, safeJson } from './printable.js';

describe('printable', () => {
  test('returns plain text unchanged (the same string)', () => {
    const text = 'key=3c6444 ü ✈';
    expect(printable(text)).toBe(text);
  });

  test('escapes ANSI sequences, newlines, DEL, C1 controls and Unicode line separators', () => {
    expect(printable('\u001b[31mred\u001b[0m')).toBe('\\x1b[31mred\\x1b[0m');
    expect(printable('a\nFAKE LOG LINE\r\t')).toBe('a\\x0aFAKE LOG LINE\\x0d\\x09');
    expect(printable('\u007f\u009b\u2028\u2029')).toBe('\\x7f\\x9b\\u2028\\u2029');
    expect(printable('\u0000')).toBe('\\x00');
  });

  test('gives the same answer when called again (no regex state carried over)', () => {
    expect(printable('\u001b')).toBe('\\x1b');
    expect(printable('\u001b')).toBe('\\x1b');
    expect(printable('x\u001by')).toBe('x\\x1by');
  });
});

describe('safeJson', () => {
  test('stringifies BigInt as its decimal value', () => {
    expect(safeJson({ offset: 12345678901234567890n })).toBe('{"offset":"12345678901234567890"}');
  });

  test('marks circular references instead of throwing', () => {
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = loop;
    expect(safeJson(loop)).toBe('{"a":1,"self":"[Circular]"}');
  });

  test('names what cannot be stringified instead of throwing', () => {
    const hostile = {
      toJSON() {
        throw new Error('no\nway');
      },
    };
    expect(safeJson(hostile)).toBe('[unserializable: no\\x0away]');
  });

  test('undefined and functions give a string, not undefined', () => {
    expect(safeJson(undefined)).toBe('undefined');
  });

  test('control characters inside values stay escaped as JSON does', () => {
    expect(safeJson({ key: '\u001b[2J' })).toBe('{"key":"\\u001b[2J"}');
  });
});

describe('printableStack', () => {
  test('keeps the frames on their own lines and escapes the message', () => {
    const error = new Error('bad key \u001b[2J\n    at forged (evil.js:1:1)');
    const stack = printableStack(error);
    expect(stack.startsWith('Error: bad key \\x1b[2J\\x0a    at forged (evil.js:1:1)\n    at ')).toBe(true);
    expect(stack.split('\n').filter((line) => line.includes('forged'))).toHaveLength(1);
  });

  test('a message no longer found in the stack: the whole stack is escaped', () => {
    const error = new Error('original');
    void error.stack; // V8 formats the stack on first access
    error.message = 'changed\nlater';
    expect(printableStack(error)).not.toContain('\n');
  });

  test('an error without a message keeps its stack as it is', () => {
    const error = new Error();
    expect(printableStack(error)).toBe(error.stack);
  });
});
