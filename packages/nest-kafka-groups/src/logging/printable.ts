/** C0 and C1 control characters, DEL, and the Unicode line and paragraph separators. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Text from a message (a key, a header value, a JSON parse error quoting the value) made safe for one log line:
 * control characters become `\xNN` / `\uNNNN` escapes, so a payload cannot forge log lines or drive a terminal
 * with ANSI escape sequences.
 */
export function printable(text: string): string {
  CONTROL.lastIndex = 0;
  if (!CONTROL.test(text)) return text;
  return text.replace(CONTROL, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * JSON for a log line that never throws: BigInt becomes its decimal string, an object met again (a cycle) `[Circular]`,
 * and anything else JSON.stringify refuses is named instead of stringified.
 */
export function safeJson(value: unknown): string {
  const seen = new WeakSet<object>();
  try {
    return printable(
      JSON.stringify(value, (_key, item: unknown) => {
        if (typeof item === 'bigint') return item.toString();
        if (typeof item === 'object' && item !== null) {
          if (seen.has(item)) return '[Circular]';
          seen.add(item);
        }
        return item;
      }) ?? String(value),
    );
  } catch (error) {
    return `[unserializable: ${printable((error as Error)?.message ?? String(error))}]`;
  }
}

/**
 * An error's stack for a log, its frames on their own lines as usual but the message part escaped: a message
 * carrying a newline could otherwise add a forged frame or log line. Escapes the whole stack when the message
 * cannot be found in it.
 */
export function printableStack(error: Error): string {
  const stack = error.stack ?? '';
  const at = error.message ? stack.indexOf(error.message) : -1;
  if (at === -1) return error.message ? printable(stack) : stack;
  return stack.slice(0, at) + printable(error.message) + stack.slice(at + error.message.length);
}
