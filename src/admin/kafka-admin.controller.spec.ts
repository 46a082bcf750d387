import { describe, expect, it } from '@jest/globals';
import { ConflictException } from '@nestjs/common';
import {
  KafkaConsumerProtocolGroupError,
  KafkaGroupNotEmptyError,
  type KafkaGroups,
} from 'nest-kafka-groups';
import { KafkaAdminController } from './kafka-admin.controller.js';

/** The seek endpoint's answer to a seek the library refuses because the group is not empty. */
async function seekRefusedWith(error: Error): Promise<unknown> {
  const groups = { seek: () => Promise.reject(error) } as unknown as KafkaGroups;
  return new KafkaAdminController(groups).seek('orders', { topic: 'orders', offset: 'earliest' }).then(
    () => undefined,
    (answer: unknown) => answer,
  );
}

function expectConflict(answer: unknown, message: string): void {
  expect(answer).toBeInstanceOf(ConflictException);
  expect((answer as ConflictException).getStatus()).toBe(409);
  expect((answer as ConflictException).message).toBe(message);
}

describe('KafkaAdminController seek', () => {
  const member = { memberId: 'm-java', clientId: 'java-orders', clientHost: '/10.0.0.9' };

  it('answers 409 with the message for a group with members of other processes', async () => {
    const error = new KafkaGroupNotEmptyError('orders', 'Stable', [member], 10_000);
    expectConflict(await seekRefusedWith(error), error.message);
  });

  it('answers 409 with the message for a group a group.protocol=consumer (KIP-848) member is in', async () => {
    const error = new KafkaConsumerProtocolGroupError(
      'orders',
      'Stable',
      [{ ...member, protocol: 'consumer' }],
      10_000,
    );
    expectConflict(await seekRefusedWith(error), error.message);
  });
});
