import type { IHeaders, KafkaMessage } from '../client/kafkajs.js';
import { KafkaMessageLimitError } from '../errors/kafka-message-limit.error.js';
import { KafkaPayloadDecodeError } from '../errors/kafka-payload-decode.error.js';
import type { KafkaMessageLimits } from '../kafka.options.js';

/** Every JSON object key takes at least 4 bytes: `"":0`. */
const MIN_BYTES_PER_KEY = 4;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

/**
 * Checks a message against its handler's limits and decodes its value: the Buffer for a raw handler, parsed JSON
 * otherwise. Returns the payload, or the non-retryable error that sends the message to the dead-letter topic.
 * The JSON walk runs only when the value is large enough to break a JSON bound, so a common small message costs
 * a header loop and at most a few native byte searches.
 */
export function decodePayload(
  limits: KafkaMessageLimits,
  raw: boolean,
  topic: string,
  partition: number,
  message: KafkaMessage,
): unknown {
  const headerError = checkHeaders(limits, message.headers);
  if (headerError) return limitError(headerError, topic, partition, message);
  const value = message.value;
  if (value === null) return null;
  if (value.length > limits.maxValueBytes) {
    return new KafkaMessageLimitError(
      'maxValueBytes',
      value.length,
      limits.maxValueBytes,
      topic,
      partition,
      message.offset,
    );
  }
  if (raw) return value;
  let data: unknown;
  try {
    data = JSON.parse(value.toString());
  } catch (error) {
    return new KafkaPayloadDecodeError(topic, partition, message.offset, error);
  }
  if (mayBreakJsonBounds(limits, value)) {
    const jsonError = checkJson(limits, data);
    if (jsonError) return limitError(jsonError, topic, partition, message);
  }
  return data;
}

type Breach = [limit: keyof KafkaMessageLimits, actual: number, max: number];

function limitError([limit, actual, max]: Breach, topic: string, partition: number, message: KafkaMessage) {
  return new KafkaMessageLimitError(limit, actual, max, topic, partition, message.offset);
}

function checkHeaders(limits: KafkaMessageLimits, headers: IHeaders | undefined): Breach | undefined {
  if (!headers) return undefined;
  let count = 0;
  let bytes = 0;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      count += value.length;
      for (const item of value) bytes += name.length + byteLength(item);
    } else {
      count++;
      bytes += name.length + byteLength(value);
    }
    if (count > limits.maxHeaders) return ['maxHeaders', count, limits.maxHeaders];
    if (bytes > limits.maxHeaderBytes) return ['maxHeaderBytes', bytes, limits.maxHeaderBytes];
  }
  return undefined;
}

/** A header value may be null (a Java producer's `new RecordHeader(name, null)`). */
function byteLength(value: Buffer | string | null): number {
  if (value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/**
 * Whether the value is long enough to hold more keys than allowed, or holds more opening brackets than the
 * depth allowed (each level opens one). Both are upper bounds, so false means no JSON bound can be broken.
 */
export function mayBreakJsonBounds(limits: KafkaMessageLimits, value: Buffer): boolean {
  if (value.length >= MIN_BYTES_PER_KEY * (limits.maxJsonKeys + 1)) return true;
  if (value.length < 2 * (limits.maxJsonDepth + 1)) return false;
  return (
    countUpTo(value, OPEN_BRACE, limits.maxJsonDepth + 1) +
      countUpTo(value, OPEN_BRACKET, limits.maxJsonDepth + 1) >
    limits.maxJsonDepth
  );
}

function countUpTo(value: Buffer, byte: number, max: number): number {
  let count = 0;
  for (let at = value.indexOf(byte); at !== -1 && count < max; at = value.indexOf(byte, at + 1)) count++;
  return count;
}

/**
 * Depth and key count of a parsed JSON value, without recursion (a deep value must not overflow the stack here
 * either) and stopping at the first bound broken.
 */
function checkJson(limits: KafkaMessageLimits, data: unknown): Breach | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const stack: unknown[] = [data];
  const depths: number[] = [1];
  let keys = 0;
  while (stack.length > 0) {
    const node = stack.pop() as object;
    const depth = depths.pop() as number;
    if (depth > limits.maxJsonDepth) return ['maxJsonDepth', depth, limits.maxJsonDepth];
    if (Array.isArray(node)) {
      for (const item of node) {
        if (typeof item === 'object' && item !== null) {
          stack.push(item);
          depths.push(depth + 1);
        }
      }
      continue;
    }
    for (const key in node) {
      if (++keys > limits.maxJsonKeys) return ['maxJsonKeys', keys, limits.maxJsonKeys];
      const child = (node as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) {
        stack.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return undefined;
}
