import { KafkaHandlerDefinitionError } from './kafka-handler-definition.error.js';

/**
 * A `@KafkaHandler` method whose class was compiled without decorator metadata (`design:paramtypes`): its
 * `@Payload()` parameter has no type, so pipes would validate nothing and a `Buffer` payload would get decoded JSON.
 */
export class KafkaDecoratorMetadataError extends KafkaHandlerDefinitionError {
  constructor(readonly handler: string) {
    super(
      `${handler} has no decorator metadata (design:paramtypes), so its @Payload() parameter has no type: ` +
        'ValidationPipe would pass every payload on unvalidated, and a Buffer payload would get decoded JSON. ' +
        'Compile the class with "emitDecoratorMetadata": tsc or the Nest CLI, SWC with decoratorMetadata, or ' +
        "Vite 8's Oxc (vitest 4 on Vite 8 reads it from tsconfig.json); esbuild and tsx emit none",
    );
  }
}
