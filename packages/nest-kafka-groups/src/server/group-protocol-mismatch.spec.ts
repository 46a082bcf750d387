import { describe, expect, test } from '@jest/globals';
import { INTEROP_ASSIGNERS } from '../assignors/interop.assigners.js';
import { Kafka, KafkaLogLevel } from '../client/kafkajs.js';
import { KafkaGroupProtocolError } from '../errors/kafka-group-protocol.error.js';
import { advertisedProtocols, isInconsistentGroupProtocol } from './group-protocol-mismatch.js';

describe('a group whose members share no protocol with ours', () => {
  test("the broker's refusal is found in kafkajs's wrappers, other errors are not taken for it", () => {
    const refusal = Object.assign(new Error("The group member's supported protocols are incompatible"), {
      type: 'INCONSISTENT_GROUP_PROTOCOL',
    });
    expect(isInconsistentGroupProtocol(refusal)).toBe(true);
    expect(isInconsistentGroupProtocol({ name: 'KafkaJSNonRetriableError', originalError: refusal })).toBe(
      true,
    );
    expect(isInconsistentGroupProtocol(new Error('wrapped', { cause: refusal }))).toBe(true);
    expect(isInconsistentGroupProtocol(Object.assign(new Error('x'), { type: 'UNKNOWN_MEMBER_ID' }))).toBe(
      false,
    );
    expect(isInconsistentGroupProtocol(undefined)).toBe(false);
  });

  test('the protocols named are the ones the members advertise, in order', () => {
    const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: KafkaLogLevel.NOTHING });
    expect(advertisedProtocols(kafka, 'g', INTEROP_ASSIGNERS)).toEqual([
      'range',
      'roundrobin',
      'RoundRobinAssigner',
    ]);
  });

  test('the message names the group, both sides\u2019 protocols, the other members and the fix', () => {
    const cause = new Error('incompatible');
    const error = new KafkaGroupProtocolError(
      'orders',
      ['range', 'roundrobin'],
      { protocol: 'cooperative-sticky', clientIds: ['rdkafka-a', 'rdkafka-b'] },
      cause,
    );
    expect(error.message).toContain('Cannot join consumer group "orders" with protocols range, roundrobin:');
    expect(error.message).toContain(
      'its members (rdkafka-a, rdkafka-b) use assignment protocol "cooperative-sticky"',
    );
    expect(error.message).toContain('partition.assignment.strategy');
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('KafkaGroupProtocolError');
  });

  test('without a description of the group (or while it rebalances) it says no protocol is shared', () => {
    for (const inUse of [undefined, { protocol: '', clientIds: ['x'] }]) {
      expect(new KafkaGroupProtocolError('orders', ['range'], inUse).message).toContain(
        'Cannot join consumer group "orders" with protocols range: its members advertise none of these.',
      );
    }
  });
});
