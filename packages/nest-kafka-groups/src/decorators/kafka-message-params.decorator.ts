import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { KafkaGroupContext } from '../context/kafka-group.context.js';

const kafkaContext = (ctx: ExecutionContext) => ctx.switchToRpc().getContext<KafkaGroupContext>();

/** The message key as a UTF-8 string (undefined for a null key). */
export const KafkaKey = createParamDecorator((_: unknown, ctx: ExecutionContext) => kafkaContext(ctx).key);

/**
 * The message headers decoded as UTF-8, or one header's value: `@KafkaMessageHeaders('traceparent')`. Not named
 * `KafkaHeaders`, which @nestjs/microservices exports (an enum of header names) and an app may import beside it.
 */
export const KafkaMessageHeaders = createParamDecorator((name: string | undefined, ctx: ExecutionContext) => {
  const headers = kafkaContext(ctx).headers;
  return name === undefined ? headers : headers[name];
});
