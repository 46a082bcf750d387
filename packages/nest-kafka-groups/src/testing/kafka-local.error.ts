/** The local broker cannot be started, reached or stopped; the message says why and what to do instead. */
export class KafkaLocalError extends Error {
  override name = 'KafkaLocalError';
}
