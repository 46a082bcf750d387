import { KafkaHandlerDefinitionError } from './kafka-handler-definition.error.js';

/**
 * A `@KafkaHandler` method whose class was compiled without decorator metadata (`design:paramtypes`): its
 * `@Payload()` parameter has no type, so pipes would validate nothing and a `Buffer` payload would get decoded JSON.
 * JavaScript has no types to emit: a JavaScript controller declares them itself, as the message says.
 */
export class KafkaDecoratorMetadataError extends KafkaHandlerDefinitionError {
  constructor(readonly handler: string) {
    super(
      `${handler} has no decorator metadata (design:paramtypes), so its @Payload() parameter has no type: ` +
        'ValidationPipe would pass every payload on unvalidated, and a Buffer payload would get decoded JSON. ' +
        'Compile the class with "emitDecoratorMetadata": tsc or the Nest CLI, SWC with decoratorMetadata, or ' +
        "Vite 8's Oxc (vitest 4 on Vite 8 reads it from tsconfig.json); esbuild and tsx emit none. In JavaScript, " +
        "declare the types on the method: @Reflect.metadata('design:paramtypes', [Object, KafkaGroupContext])",
    );
  }
}
