import { afterAll, afterEach } from '@jest/globals';
import { Controller, type INestApplication, Module, type Type } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  type KafkaFeatureOptions,
  type KafkaGroupContext,
  KafkaHandler,
  KafkaModule,
} from 'nest-kafka-groups';
import { KafkaTestClient } from 'nest-kafka-groups/testing';

/**
 * The in-process specs' feature module: a controller that records every delivery and then does what the test set
 * as `recording.behaviour`, in a module of its own group on one topic (fresh names per test).
 */
export interface Delivery {
  group: string;
  partition: number;
  offset: string;
  key: string | undefined;
  seq: number;
  attempt: number;
  /** When the handler was called (performance.now()). */
  at: number;
  /** Whether `ctx.signal` was aborted when the handler returned or threw. */
  aborted: boolean;
}

export type Behaviour = (payload: { seq: number }, ctx: KafkaGroupContext) => Promise<void> | void;

/** What the handlers recorded, and what they do next; `resetRecording()` in afterEach. */
export const recording: { deliveries: Delivery[]; behaviour: Behaviour } = {
  deliveries: [],
  behaviour: () => undefined,
};

export function resetRecording(): void {
  recording.deliveries.length = 0;
  recording.behaviour = () => undefined;
}

/** Records the delivery, then runs the test's behaviour; for a spec's own controller too. */
export async function record(payload: { seq: number }, ctx: KafkaGroupContext): Promise<void> {
  const delivery: Delivery = {
    group: ctx.groupId,
    partition: ctx.partition,
    offset: ctx.offset,
    key: ctx.key,
    seq: payload.seq,
    attempt: ctx.attempt,
    at: performance.now(),
    aborted: false,
  };
  recording.deliveries.push(delivery);
  try {
    await recording.behaviour(payload, ctx);
  } finally {
    delivery.aborted = ctx.signal.aborted;
  }
}

@Controller()
export class RecordingController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext): Promise<void> {
    return record(payload, ctx);
  }
}

/** A second controller class, so two modules of one application can each host a handler of their own. */
@Controller()
export class SecondRecordingController {
  @KafkaHandler('${TOPIC}')
  handle(@Payload() payload: { seq: number }, @Ctx() ctx: KafkaGroupContext): Promise<void> {
    return record(payload, ctx);
  }
}

/**
 * A module whose handlers (RecordingController unless `controllers` says otherwise) form group `groupId` on
 * `topic` (the `${TOPIC}` variable), with any other forFeature option.
 */
export function recordingFeature(
  groupId: string,
  topic: string,
  {
    controllers = [RecordingController],
    ...options
  }: Partial<KafkaFeatureOptions> & { controllers?: Type[] } = {},
): Type {
  @Module({
    imports: [
      KafkaModule.forFeature({
        ...options,
        groupId,
        topicVariables: { TOPIC: topic, ...options.topicVariables },
      }),
    ],
    controllers,
  })
  class RecordingFeatureModule {}
  return RecordingFeatureModule;
}

/**
 * For a describe block: a KafkaTestClient and the list of apps its tests start; after each test the apps are closed
 * and the recording reset, after all the client is closed.
 */
export function recordingSuite(): { kafka: KafkaTestClient; apps: INestApplication[] } {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];
  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    resetRecording();
  });
  afterAll(() => kafka.closeAll());
  return { kafka, apps };
}
