import type { IHeaders } from '../client/kafkajs.js';

/** Spring Kafka's retry-topic header names (RetryTopicHeaders.DEFAULT_HEADER_*). */
export const RETRY_TOPIC_HEADERS = {
  /** The attempt the record's next delivery is: a 4-byte big-endian int (a 1-byte legacy form is read too). */
  attempts: 'retry_topic-attempts',
  /** Epoch milliseconds from which the record may be handled: Java's `BigInteger.toByteArray()` of the long. */
  backoffTimestamp: 'retry_topic-backoff-timestamp',
  /** Timestamp of the record in its main topic, same encoding, carried unchanged along the chain. */
  originalTimestamp: 'retry_topic-original-timestamp',
} as const;

/** Spring's cap on an attempts value read back; anything outside 1..cap reads as 1. */
const ATTEMPTS_HARD_CAP = 0x7fff;
/** Spring ignores a due time more than a day ahead (a clock or header gone wrong must not park a partition). */
export const MAX_BACKOFF_MS = 24 * 60 * 60 * 1000;

/** The last value of a header, as Kafka's `Headers.lastHeader` reads it; kafkajs gives repeated names as arrays. */
export function lastHeader(headers: IHeaders | undefined, name: string): Buffer | undefined {
  const value = headers?.[name];
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  if (last === undefined || last === null) return undefined;
  return typeof last === 'string' ? Buffer.from(last) : last;
}

/** Adds one more value under `name`, keeping the earlier ones (Spring's default, retainAllRetryHeaderValues). */
export function appendHeader(headers: IHeaders, name: string, value: Buffer): void {
  const existing = headers[name];
  if (existing === undefined) headers[name] = value;
  else headers[name] = [...(Array.isArray(existing) ? existing : [existing]), value];
}

/** `ByteBuffer.allocate(4).putInt(value).array()`. */
export function encodeAttempts(attempts: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(attempts);
  return buffer;
}

/** DeadLetterPublishingRecovererFactory.getAttempts: 1 byte unsigned or 4 bytes big-endian, within 1..32767, else 1. */
export function decodeAttempts(value: Buffer | undefined): number {
  let raw: number;
  if (value?.length === 1) raw = value[0];
  else if (value?.length === 4) raw = value.readInt32BE(0);
  else return 1;
  return raw >= 1 && raw <= ATTEMPTS_HARD_CAP ? raw : 1;
}

/**
 * `BigInteger.valueOf(value).toByteArray()`: the shortest big-endian two's complement form that keeps the sign
 * (a timestamp of today takes 6 bytes, 0 takes one).
 */
export function encodeJavaBigInteger(value: bigint): Buffer {
  const full = Buffer.alloc(8);
  full.writeBigInt64BE(BigInt.asIntN(64, value));
  let start = 0;
  // Drop a leading byte while the next one carries the same sign bit: 0x00 before 0xxxxxxx, 0xff before 1xxxxxxx.
  while (
    start < 7 &&
    ((full[start] === 0x00 && (full[start + 1] & 0x80) === 0) ||
      (full[start] === 0xff && (full[start + 1] & 0x80) !== 0))
  ) {
    start++;
  }
  return full.subarray(start);
}

/**
 * `new BigInteger(bytes).longValue()` for 1 to 8 bytes (the lengths Spring accepts); undefined for anything else,
 * which Spring ignores too.
 */
export function decodeJavaBigInteger(value: Buffer | undefined): bigint | undefined {
  if (!value || value.length === 0 || value.length > 8) return undefined;
  let result = BigInt.asIntN(8, BigInt(value[0]));
  for (let i = 1; i < value.length; i++) result = (result << 8n) | BigInt(value[i]);
  return result;
}

/** The retry headers a record gets when it moves on after a failed attempt. */
export interface RetryHeaderValues {
  /** The attempt its next delivery will be (the failed one + 1). */
  attempts: number;
  /** Epoch milliseconds from which it may be handled. */
  dueAt: number;
  /** The original-timestamp value, copied as it was (see originalTimestampOf). */
  originalTimestamp: Buffer;
}

/**
 * The original-timestamp bytes to carry on: the record's own header when it is a valid one (it came from a retry
 * topic), else the record's timestamp (it came from the main topic). As DeadLetterPublishingRecovererFactory does.
 */
export function originalTimestampOf(headers: IHeaders | undefined, timestamp: string): Buffer {
  const carried = lastHeader(headers, RETRY_TOPIC_HEADERS.originalTimestamp);
  if (carried && carried.length > 0 && carried.length <= 8) return carried;
  return encodeJavaBigInteger(BigInt(timestamp));
}

/** Appends the three retry headers in Spring's order (original timestamp, attempts, backoff timestamp). */
export function appendRetryHeaders(headers: IHeaders, values: RetryHeaderValues): void {
  appendHeader(headers, RETRY_TOPIC_HEADERS.originalTimestamp, values.originalTimestamp);
  appendHeader(headers, RETRY_TOPIC_HEADERS.attempts, encodeAttempts(values.attempts));
  appendHeader(headers, RETRY_TOPIC_HEADERS.backoffTimestamp, encodeJavaBigInteger(BigInt(values.dueAt)));
}

/**
 * Milliseconds until a retry record is due (0 or less: handle it now), read as KafkaBackoffAwareMessageListenerAdapter
 * reads it: no valid header, or a due time more than MAX_BACKOFF_MS ahead, means no waiting.
 */
export function msUntilDue(headers: IHeaders | undefined, now: number): number {
  const dueAt = decodeJavaBigInteger(lastHeader(headers, RETRY_TOPIC_HEADERS.backoffTimestamp));
  if (dueAt === undefined) return 0;
  const wait = Number(dueAt) - now;
  return wait > MAX_BACKOFF_MS ? 0 : wait;
}
