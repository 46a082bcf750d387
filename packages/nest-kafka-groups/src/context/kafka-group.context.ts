import { BaseRpcContext } from '@nestjs/microservices';
import type { IHeaders, KafkaMessage } from '../client/kafkajs.js';

/** Shared by every context: the base class only stores it, and a new array per message is garbage on the hot path. */
const NO_ARGS: [] = [];

/**
 * What a `@KafkaHandler` learns about the message it handles (`@Ctx()`). Deliberately narrow: no raw consumer,
 * because a raw `seek` commits at once and a raw `pause` fights the retry pauses.
 */
export class KafkaGroupContext extends BaseRpcContext<[]> {
  private decodedHeaders?: Record<string, string | string[]>;
  private readonly signalSource: AbortSignal | AbortController;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly message: KafkaMessage,
    readonly groupId: string,
    /** 1 on the first delivery, 2 on the first retry, ... */
    readonly attempt: number,
    /**
     * The message's signal, or the controller it comes from: the consumer passes its batch's controller, whose
     * signal Node creates on first read, so a handler that never reads `signal` costs no signal per batch.
     */
    signal: AbortSignal | AbortController,
  ) {
    super(NO_ARGS);
    this.signalSource = signal;
  }

  /** Aborted when the application shuts down or the message ran too long: long handlers should stop early. */
  get signal(): AbortSignal {
    const source = this.signalSource;
    return 'signal' in source ? source.signal : source;
  }

  get offset(): string {
    return this.message.offset;
  }

  get key(): string | undefined {
    return this.message.key?.toString();
  }

  get timestamp(): string {
    return this.message.timestamp;
  }

  /** Header values decoded as UTF-8 (a null-prototype object); decoded on first access only, off the hot path. */
  get headers(): Record<string, string | string[]> {
    this.decodedHeaders ??= decodeHeaders(this.message.headers);
    return this.decodedHeaders;
  }
}

/**
 * A null value (a Java producer may send one) reads as ''. A null-prototype object: a header named `__proto__` (or `constructor`, `toString`) is a header like any other,
 * kept as an own property, never the object's prototype and never shadowed by Object.prototype.
 */
export function decodeHeaders(headers: IHeaders | undefined): Record<string, string | string[]> {
  const decoded = Object.create(null) as Record<string, string | string[]>;
  if (!headers) return decoded;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    decoded[name] = Array.isArray(value) ? value.map(headerText) : headerText(value);
  }
  return decoded;
}

function headerText(value: Buffer | string | null): string {
  return value === null ? '' : value.toString();
}
