/**
 * ConsumerGroupDescribe (API key 69, KIP-848), which kafkajs 2.2.4 does not have: the only request that describes
 * a group of the consumer group protocol. DescribeGroups, as kafkajs speaks it (v0-v2), answers such a group as
 * `Dead` with no members; the broker keeps the group's members, their assignments and its state for this request.
 *
 * Schema (apache/kafka clients/src/main/resources/common/message/ConsumerGroupDescribe{Request,Response}.json,
 * flexible from version 0; version 1 adds the member's type, KIP-1099):
 *
 *   Request => [group_ids] include_authorized_operations TAG_BUFFER
 *   Response => throttle_time_ms [groups] TAG_BUFFER
 *     groups => error_code error_message group_id group_state group_epoch assignment_epoch assignor_name [members]
 *               authorized_operations TAG_BUFFER
 *       members => member_id instance_id rack_id member_epoch client_id client_host [subscribed_topic_names]
 *                  subscribed_topic_regex assignment target_assignment member_type(v1+) TAG_BUFFER
 *         assignment => [topic_partitions] TAG_BUFFER
 *           topic_partitions => topic_id(UUID) topic_name [partitions(INT32)] TAG_BUFFER
 *
 * Arrays and strings are compact (unsigned varint length + 1), every struct ends with tagged fields. A flexible
 * request has header v2 (header v1 and an empty tag buffer) and its response header v1 (correlation id and a tag
 * buffer): kafkajs writes header v1 and strips only the correlation id, so the request body here starts with the
 * header's empty tag buffer and the response is decoded from the header's tag buffer on.
 */

export const CONSUMER_GROUP_DESCRIBE_API_KEY = 69;
/** The versions this codec speaks; the highest the broker also speaks is used. */
export const CONSUMER_GROUP_DESCRIBE_VERSIONS = [0, 1] as const;
/** GROUP_ID_NOT_FOUND: no group of that id, or one of the classic protocol ("Group x is not a consumer group"). */
export const GROUP_ID_NOT_FOUND = 69;

/** A member's type (version 1+): a member that joins with JoinGroup (classic) or ConsumerGroupHeartbeat (consumer). */
export type ConsumerGroupMemberType = 'classic' | 'consumer' | null;

export interface ConsumerGroupDescribeMember {
  memberId: string;
  instanceId: string | null;
  rackId: string | null;
  memberEpoch: number;
  clientId: string;
  clientHost: string;
  subscribedTopicNames: string[];
  subscribedTopicRegex: string | null;
  /** topic -> partitions the member holds now. */
  assignment: Record<string, number[]>;
  /** topic -> partitions the broker's assignor wants it to hold (differs while it reconciles). */
  targetAssignment: Record<string, number[]>;
  /** null before version 1 (or when the broker does not know). */
  memberType: ConsumerGroupMemberType;
}

export interface ConsumerGroupDescribeGroup {
  errorCode: number;
  errorMessage: string | null;
  groupId: string;
  /** Empty, Assigning, Reconciling, Stable or Dead; empty when the group was not found. */
  groupState: string;
  groupEpoch: number;
  assignmentEpoch: number;
  assignorName: string;
  members: ConsumerGroupDescribeMember[];
}

export interface ConsumerGroupDescribeResponse {
  throttleTimeMs: number;
  groups: ConsumerGroupDescribeGroup[];
}

/** The request body after kafkajs's header v1: the header's tag buffer, then the request (version 0 and 1 alike). */
export function encodeConsumerGroupDescribeRequest(groupIds: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.of(0), uvarint(groupIds.length + 1)];
  for (const groupId of groupIds) {
    const bytes = Buffer.from(groupId, 'utf8');
    parts.push(uvarint(bytes.length + 1), bytes);
  }
  parts.push(Buffer.of(0 /* include_authorized_operations: false */, 0 /* tag buffer */));
  return Buffer.concat(parts);
}

/** Decodes the answer kafkajs hands over (the response after its correlation id). */
export function decodeConsumerGroupDescribeResponse(
  payload: Buffer,
  version: number,
): ConsumerGroupDescribeResponse {
  const reader = new Reader(payload);
  reader.tags(); // response header v1
  const throttleTimeMs = reader.int32();
  const groups = reader.array(() => {
    const group: ConsumerGroupDescribeGroup = {
      errorCode: reader.int16(),
      errorMessage: reader.nullableString(),
      groupId: reader.string(),
      groupState: reader.string(),
      groupEpoch: reader.int32(),
      assignmentEpoch: reader.int32(),
      assignorName: reader.string(),
      members: reader.array(() => {
        const member: ConsumerGroupDescribeMember = {
          memberId: reader.string(),
          instanceId: reader.nullableString(),
          rackId: reader.nullableString(),
          memberEpoch: reader.int32(),
          clientId: reader.string(),
          clientHost: reader.string(),
          subscribedTopicNames: reader.array(() => reader.string()),
          subscribedTopicRegex: reader.nullableString(),
          assignment: readAssignment(reader),
          targetAssignment: readAssignment(reader),
          memberType: version >= 1 ? memberType(reader.int8()) : null,
        };
        reader.tags();
        return member;
      }),
    };
    reader.int32(); // authorized_operations (not asked for)
    reader.tags();
    return group;
  });
  reader.tags();
  if (reader.remaining() !== 0) {
    throw new RangeError(
      `ConsumerGroupDescribe v${version}: ${reader.remaining()} bytes left after the response`,
    );
  }
  return { throttleTimeMs, groups };
}

function memberType(value: number): ConsumerGroupMemberType {
  return value === 0 ? 'classic' : value === 1 ? 'consumer' : null;
}

function readAssignment(reader: Reader): Record<string, number[]> {
  const assignment: Record<string, number[]> = {};
  reader.array(() => {
    reader.skip(16); // topic_id
    const topic = reader.string();
    const partitions = reader.array(() => reader.int32());
    reader.tags();
    (assignment[topic] ??= []).push(...partitions);
  });
  reader.tags();
  for (const partitions of Object.values(assignment)) partitions.sort((a, b) => a - b);
  return assignment;
}

function uvarint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A bounds-checked reader of the flexible-version types the response uses. */
class Reader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  remaining(): number {
    return this.buffer.length - this.offset;
  }

  int8(): number {
    this.need(1);
    return this.buffer.readInt8(this.offset++);
  }

  int16(): number {
    this.need(2);
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uvarint(): number {
    let value = 0;
    for (let shift = 0; shift <= 28; shift += 7) {
      const byte = this.buffer[this.offset++];
      if (byte === undefined)
        throw new RangeError('ConsumerGroupDescribe: the response ends inside a varint');
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new RangeError('ConsumerGroupDescribe: a varint longer than 5 bytes');
  }

  skip(length: number): void {
    this.need(length);
    this.offset += length;
  }

  nullableString(): string | null {
    const length = this.uvarint();
    if (length === 0) return null;
    this.need(length - 1);
    const value = this.buffer.toString('utf8', this.offset, this.offset + length - 1);
    this.offset += length - 1;
    return value;
  }

  string(): string {
    const value = this.nullableString();
    if (value === null)
      throw new RangeError('ConsumerGroupDescribe: a null string where the schema has none');
    return value;
  }

  array<T>(item: () => T): T[] {
    const length = this.uvarint();
    if (length === 0) return [];
    const items: T[] = [];
    for (let i = 0; i < length - 1; i++) items.push(item());
    return items;
  }

  /** A tag buffer: no tagged field of this request is read, each is skipped. */
  tags(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint(); // tag
      this.skip(this.uvarint());
    }
  }

  private need(length: number): void {
    if (this.offset + length > this.buffer.length) {
      throw new RangeError(
        `ConsumerGroupDescribe: the response ends at byte ${this.buffer.length}, ${length} more needed at ${this.offset}`,
      );
    }
  }
}
