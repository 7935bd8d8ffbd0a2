import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { GatewayError, isGatewayError } from '../errors.js';
import type { RequestContext } from '../context.js';
import type { CompiledRoute } from '../routes.js';
import { BodyLimiter, ClientBodyError } from '../policy/body-limit.js';
import { BufferedBody } from './buffered-body.js';
import { secureUpstreamHeaders, type UpstreamView } from './response-headers.js';
import { upstreamError } from './upstream-error.js';

type Controller = Dispatcher.DispatchController;

/**
 * Response headers Node's parser keeps once when repeated, the first winning (`matchKnownFields`
 * in node:_http_incoming); undici hands every repeat over as an array. Read as Node read them,
 * a second Location cannot slip past the rewrite to the public origin, which reads one string.
 */
const FIRST_ONLY = new Set(['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires',
  // Not in Node's list, which joins their repeats with ', ': the rewrite reads one URL, and a
  // second one joined after it went out naming the upstream's internal address.
  'content-location', 'refresh']);

/** undici's response headers, in place, as Node's IncomingMessage has them: Set-Cookie always a list, other repeats joined or dropped. */
export function asNodeHeaders(headers: Record<string, string | string[] | undefined>): IncomingHttpHeaders {
  for (const name in headers) {
    const value = headers[name];
    if (typeof value !== 'object' || name === 'set-cookie') continue;
    headers[name] = FIRST_ONLY.has(name) ? value[0] : value.join(name === 'cookie' ? '; ' : ', ');
  }
  const cookies = headers['set-cookie'];
  if (typeof cookies === 'string') headers['set-cookie'] = [cookies];
  return headers as IncomingHttpHeaders;
}

/**
 * One forwarded request, as the undici dispatch handler of its upstream exchange: the request
 * body read from the client as the upstream takes it, the answer's headers cleaned and written
 * with one writeHead, its body written on as it comes (paused while the client is slower).
 *
 * The route timeout is inactivity on either side of the upstream exchange (no answer within it,
 * no body chunk within it), on a timer of its own: undici's are coarse (its fast timers fire up
 * to a second late) and stop while a request body is still being sent. Time spent waiting on a
 * slow client is not the upstream's; a client that reads nothing for `sendTimeoutMs` (nginx's
 * send_timeout) is cut off, or each one that stops reading would hold a pooled upstream
 * connection for as long as it stays connected.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  readonly body: BodyLimiter | BufferedBody | null;
  private controller: Controller | undefined;
  /** The route timeout; none for `timeout: 0` (as a socket timeout of 0 before). */
  private readonly timer: NodeJS.Timeout | undefined;
  /** The answer waits for the client to drain. */
  private paused = false;
  /** Runs while paused: the client has read nothing for sendTimeoutMs. */
  private stall: NodeJS.Timeout | undefined;
  /** Finished, failed or given up: nothing more is written, failed or aborted. */
  private settled = false;
  /** The client went away first. */
  private clientGone = false;
  /** Why the exchange was given up before undici started it: it is aborted as it starts. */
  private abandoned: Error | undefined;
  private readonly forwardedAt: number;

  constructor(
    private readonly ctx: RequestContext,
    private readonly route: CompiledRoute,
    private readonly res: ServerResponse,
    private readonly fail: (err: GatewayError) => void,
    private readonly view: UpstreamView,
    private readonly hsts: string | undefined,
    withBody: boolean,
    private readonly sendTimeoutMs: number,
  ) {
    // A body a step read whole (OpenAPI validation) goes as those bytes; any other is streamed, bounded.
    this.body = ctx.body ? new BufferedBody(ctx.body) : withBody ? new BodyLimiter(ctx.req, route.config.maxBody, this.touch) : null;
    this.forwardedAt = performance.now();
    this.timer = route.config.timeout > 0 ? setTimeout(this.onTimeout, route.config.timeout) : undefined;
    res.once('close', this.onClientClose);
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.abandoned) controller.abort(this.abandoned);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    // 1xx (103 Early Hints): not the answer. Dropped, as http-proxy dropped them before.
    if (statusCode < 200 || this.settled) return;
    const { ctx, res, route } = this;
    ctx.upstreamMs = performance.now() - this.forwardedAt;
    const out = asNodeHeaders(headers);
    secureUpstreamHeaders(out, ctx, route.config, ctx.secure ? this.hsts : undefined, this.view);
    // Node's own keep-alive decision (client's `Connection: close`, HTTP/1.0, shutdown): the
    // client's header never went upstream, so the upstream's answer cannot carry it.
    // The last request a socket may carry (maxRequestsPerSocket) closes too: an explicit header
    // overrides Node's own `Connection: close` there, and the client's next request got a 503.
    const last = (res as ServerResponse & { maxRequestsOnConnectionReached?: boolean }).maxRequestsOnConnectionReached === true;
    out.connection = res.shouldKeepAlive && !last ? 'keep-alive' : 'close';
    ctx.reply.forwarded(statusCode);
    try {
      if (statusMessage) res.writeHead(statusCode, statusMessage, out);
      else res.writeHead(statusCode, out);
    } catch (err) {
      // A header value or reason phrase Node will not write (undici's parser is more lenient).
      controller.abort(new GatewayError('UPSTREAM_BAD_RESPONSE', `unwritable answer: ${(err as Error).message}`));
      return;
    }
    res.on('drain', this.onDrain);
    this.timer?.refresh();
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.ctx.bytesOut += chunk.length;
    this.timer?.refresh();
    if (!this.res.write(chunk)) {
      this.paused = true;
      controller.pause();
      this.stall = setTimeout(this.onStall, this.sendTimeoutMs);
    }
  }

  onResponseEnd(): void {
    if (this.settle()) this.res.end();
  }

  onResponseError(_controller: Controller | undefined, err: Error): void {
    if (!this.settle(err)) return;
    // Nothing to answer: the client left, or its own body broke (Node answers that 400 itself).
    if (this.clientGone || err instanceof ClientBodyError) return;
    // An upstream that died mid-body: the client's answer is cut off where the upstream's was.
    if (this.res.headersSent && !isGatewayError(err)) {
      this.res.destroy();
      return;
    }
    this.fail(upstreamError(err, this.ctx));
  }

  /** Marks the end of the exchange once; false if it had ended already. */
  private settle(err?: Error): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    clearTimeout(this.stall);
    if (this.body) {
      this.ctx.bytesIn = this.body.bytes;
      // A body still being read (the upstream answered before its end, or the exchange
      // failed): the rest is drained, never sent.
      this.body.stop(err);
    }
    return true;
  }

  /** Ends the exchange with `err`: at once if undici has started it, else when it does. */
  private giveUp(err: Error): void {
    if (this.controller) {
      this.controller.abort(err);
      return;
    }
    this.abandoned = err;
    this.onResponseError(undefined, err);
  }

  private readonly touch = (): void => {
    if (!this.settled) this.timer?.refresh();
  };

  private readonly onTimeout = (): void => {
    if (this.settled) return;
    if (this.paused) {
      this.timer?.refresh();
      return;
    }
    this.ctx.upstreamTimedOut = true;
    this.giveUp(new GatewayError('UPSTREAM_TIMEOUT', 'no answer within route timeout'));
  };

  private readonly onDrain = (): void => {
    if (!this.paused) return;
    this.paused = false;
    clearTimeout(this.stall);
    this.timer?.refresh();
    this.controller?.resume();
  };

  /**
   * The client stopped reading: its connection is cut, which tears the upstream request down
   * (onClientClose); the pipeline's own close handler marks the reply aborted.
   */
  private readonly onStall = (): void => {
    if (this.settled || !this.paused) return;
    this.res.destroy();
  };

  /** A client that goes away tears its upstream request down (http-proxy alone leaked it: node-http-proxy #1586). */
  private readonly onClientClose = (): void => {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    if (!this.settled) this.giveUp(new ClientBodyError('the client went away'));
  };
}
