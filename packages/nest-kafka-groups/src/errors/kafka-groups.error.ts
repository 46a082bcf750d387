/** Base class of every error this library raises, so callers can catch them as one family. */
export abstract class KafkaGroupsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
