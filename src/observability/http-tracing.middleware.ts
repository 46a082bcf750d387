import { Injectable, type NestMiddleware } from '@nestjs/common';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A SERVER span per HTTP request, the child of the caller's `traceparent` if it sent one, active while Nest
 * routes the request, so what a controller produces with `KafkaProducer` joins the request's trace. A middleware
 * rather than an interceptor: Nest runs handlers in the async context bound when its interceptor chain was built,
 * so an interceptor's `context.with` would not reach them; and rather than @opentelemetry/instrumentation-http,
 * whose require hooks must be loaded before Nest (with `--import`) and do not apply inside Jest's ESM runtime,
 * where the e2e spec runs the service.
 */
@Injectable()
export class HttpTracingMiddleware implements NestMiddleware {
  private readonly tracer = trace.getTracer('nest-kafka-groups-example');

  use(
    request: IncomingMessage & { route?: { path?: string } },
    response: ServerResponse,
    next: () => void,
  ): void {
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const method = request.method ?? 'GET';
    const span = this.tracer.startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': method, 'url.path': (request.url ?? '/').split('?')[0] },
      },
      parent,
    );
    response.once('finish', () => {
      // The route is known once Express matched it: the span is named after it, not after the concrete path.
      const route = request.route?.path;
      if (route) {
        span.updateName(`${method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', response.statusCode);
      if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  }
}
