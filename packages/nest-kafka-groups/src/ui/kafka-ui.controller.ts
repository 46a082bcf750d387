import {
  Controller,
  Get,
  Header,
  type MessageEvent,
  NotFoundException,
  Query,
  Req,
  Res,
  ServiceUnavailableException,
  Sse,
} from '@nestjs/common';
import { finalize, type Observable } from 'rxjs';
import { uiAsset, uiPage } from './ui-assets.js';
import { KafkaUiService } from './kafka-ui.service.js';

/** The request fields the page needs, in Express and Fastify alike. */
interface RequestLike {
  originalUrl?: string;
  url?: string;
}

/** Express's response and Fastify's reply both set a header so; Fastify's wraps Node's response as `raw`. */
interface ResponseLike {
  header(name: string, value: string): unknown;
  raw?: NodeResponse;
}

/** The parts of Node's http.ServerResponse that close an event stream's connection. */
interface NodeResponse {
  writableFinished: boolean;
  socket: { end(): void } | null;
  once(event: 'finish', listener: () => void): unknown;
}

/** Security headers of everything the page loads: its own script and style only, nothing inline. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'self'";

/**
 * GET /kafka/ui: the live page of the consumer groups (`?group=<id>` for one group); GET /kafka/ui/events: its
 * server-sent events; GET /kafka/ui/assets/*: its script and style. An unknown group answers 404.
 */
@Controller('kafka/ui')
export class KafkaUiController {
  constructor(private readonly ui: KafkaUiService) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  @Header('Content-Security-Policy', CSP)
  @Header('X-Content-Type-Options', 'nosniff')
  page(
    @Req() request: RequestLike,
    @Res({ passthrough: true }) response: ResponseLike,
    @Query('group') group?: string,
  ): string {
    this.known(group);
    // Set only now: the 404 of an unknown group is JSON.
    response.header('Content-Type', 'text/html; charset=utf-8');
    // Links are built from the path the page was served at, so a global prefix or a proxy path keeps working.
    const path = (request.originalUrl ?? request.url ?? '/kafka/ui').split('?')[0].replace(/\/+$/, '');
    return uiPage(path, group);
  }

  /**
   * While the application shuts down, an event stream ends and its connection closes, and a new request is refused
   * with 503: a browser's EventSource reconnects (every 3 s) to a stream that ends, and on a kept-alive connection
   * each new request would keep the HTTP server from closing, for ever.
   */
  @Sse('events')
  events(
    @Res({ passthrough: true }) response: ResponseLike,
    @Query('group') group?: string,
  ): Observable<MessageEvent> {
    this.known(group);
    if (this.ui.closed) {
      // Any status but 200 stops an EventSource for good; the connection closes after this answer.
      response.header('Connection', 'close');
      throw new ServiceUnavailableException('The application is shutting down');
    }
    const raw = response.raw ?? (response as unknown as NodeResponse);
    return this.ui.events(group).pipe(
      finalize(() => {
        if (this.ui.closed) closeWhenSent(raw);
      }),
    );
  }

  @Get('assets/app.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  @Header('X-Content-Type-Options', 'nosniff')
  script(): string {
    return uiAsset('app.js');
  }

  @Get('assets/app.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  @Header('X-Content-Type-Options', 'nosniff')
  style(): string {
    return uiAsset('app.css');
  }

  private known(group: string | undefined): void {
    if (group !== undefined && !this.ui.has(group)) {
      throw new NotFoundException(`No consumer group "${group}" runs in this process`);
    }
  }
}

/**
 * Closes the connection once the response's last bytes are written. Nest sends event streams with
 * `Connection: keep-alive`, and Node's server.close() closes only the connections idle at that moment.
 */
function closeWhenSent(response: NodeResponse): void {
  const socket = response.socket;
  if (!socket) return;
  if (response.writableFinished) socket.end();
  else response.once('finish', () => socket.end());
}
