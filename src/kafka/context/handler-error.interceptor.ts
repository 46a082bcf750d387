import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { catchError, type Observable, throwError } from 'rxjs';
import { KafkaGroupContext } from './kafka-group.context.js';

/**
 * Innermost interceptor of every `@KafkaHandler`: records the handler's (or a pipe's) original error on the
 * context. Nest's RPC exception filter turns unknown errors into a generic "Internal server error", and a user's
 * catch-all filter may swallow them; the transport needs the real error to decide on retries and dead letters.
 */
@Injectable()
export class HandlerErrorInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const kafkaContext = context.switchToRpc().getContext();
    return next.handle().pipe(
      catchError((error: unknown) => {
        if (kafkaContext instanceof KafkaGroupContext) kafkaContext.handlerError = error;
        return throwError(() => error);
      }),
    );
  }
}
