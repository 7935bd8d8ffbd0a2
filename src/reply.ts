import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GatewayError } from './errors.js';
import type { Outcome } from './context.js';
import { DEFAULT_LANGUAGE, negotiateLanguage, type Language } from './i18n/language.js';
import { OWN_SECURITY_HEADERS, renderError, writeRawResponse, type ErrorBody } from './respond.js';

/** What every reply of one listener shares, built once: HSTS (HTTPS only) and the security headers. */
export interface ReplyPolicy {
  /** The Strict-Transport-Security value, sent on answers over TLS; undefined when off. */
  readonly hsts: string | undefined;
  /** The pages' language when the browser's Accept-Language names none we have (`ui.defaultLanguage`). */
  readonly defaultLanguage?: Language | undefined;
}

/** A page of the gateway's own: its policy replaces the plain answers' stricter defaults. */
export interface PageHeaders {
  readonly csp: string;
  readonly frameOptions?: string;
  readonly referrerPolicy?: string;
}

/** Extra headers of one answer (a challenge, Location, Clear-Site-Data). */
type Extra = Readonly<Record<string, string>>;

export interface AnswerOptions {
  readonly body?: ErrorBody | undefined;
  readonly headers?: Extra | undefined;
  /** A page's own policy (the sign-in form posts to itself and its return origin). */
  readonly page?: PageHeaders | undefined;
  /** The webhook's acknowledgement of a delivery it forwarded at once. */
  readonly outcome?: 'answered' | 'forwarded';
  /** The language of a page (Content-Language, and Vary: Accept-Language since it was chosen by it). */
  readonly language?: Language | undefined;
}

/**
 * The one reply of a request or upgrade (Envoy's local reply). It owns what the client is told
 * (status, outcome, error, the headers and cookies steps added on the way) and writes every
 * answer the gateway gives itself: refusals, preflights, redirects, pages, the token endpoint,
 * webhook acknowledgements, the plain-HTTP listener's 308 and refused upgrades. A proxied
 * answer only records its status here; the access line and the metrics are read from it.
 */
export class Reply {
  status: number | undefined;
  outcome: Outcome | undefined;
  error: GatewayError | undefined;
  /** Headers for whatever answer the client gets (CORS, rate limit), lower-case names. */
  readonly headers: Record<string, string> = {};
  /** Set-Cookie values for whatever answer the client gets (session renewal, logout). */
  readonly cookies: string[] = [];

  constructor(
    readonly id: string,
    private readonly secure: boolean,
    private readonly policy: ReplyPolicy,
  ) {}

  /** The language of the pages answering `req`: its Accept-Language, else the configured default. */
  language(req: IncomingMessage): Language {
    return negotiateLanguage(req.headers['accept-language'], this.policy.defaultLanguage ?? DEFAULT_LANGUAGE);
  }

  header(name: string, value: string): void {
    this.headers[name.toLowerCase()] = value;
  }

  cookie(...values: string[]): void {
    this.cookies.push(...values);
  }

  /** The request went on to an upstream (or the webhook queue); `status` once one answered. */
  forwarded(status?: number): void {
    this.outcome = 'forwarded';
    if (status !== undefined) this.status = status;
  }

  /** The client went away before its answer was complete. */
  aborted(): void {
    if (this.outcome === undefined || this.outcome === 'forwarded') this.outcome = 'aborted';
  }

  /**
   * Records a refusal; false when one was recorded already (the first error wins: a body
   * overflow also fails the upstream request it cut off).
   */
  fail(err: GatewayError): boolean {
    if (this.error) return false;
    this.error = err;
    this.outcome = err.status >= 500 ? 'failed' : 'denied';
    this.status = err.status;
    return true;
  }

  /** Refuses with the error's status and page (HTML for browsers, JSON otherwise). */
  refuse(res: ServerResponse, err: GatewayError, html: boolean): void {
    // The answer's head went out already (an upstream that stalled mid-body): the client got that
    // status, cut short, so the access line says so; the error stays as the reason.
    if (res.headersSent) {
      if (!this.error) {
        this.error = err;
        this.status = res.statusCode;
        this.outcome = 'aborted';
      }
      res.destroy();
      return;
    }
    if (!this.fail(err)) return;
    // HEADER_INVALID is a framing refusal: the body's end is unknown, so close (RFC 9112 §6.3).
    if (err.code === 'BODY_TOO_LARGE' || err.code === 'HEADER_INVALID' || err.status >= 500) res.shouldKeepAlive = false;
    const language = html ? this.language(res.req) : undefined;
    // A CORS refusal carries none of the CORS headers a step may have set before it.
    this.write(res, err.status, renderError(err, this.id, html, language), err.headers, undefined, err.code !== 'CORS_ORIGIN_DENIED', language);
  }

  /**
   * A refused upgrade or an unparsable request: the same answer on the raw socket, which then
   * closes. After a 101 the client reads websocket frames, so nothing is written then.
   */
  refuseRaw(socket: Duplex, err: GatewayError, upgraded = false): boolean {
    if (!this.fail(err)) return false;
    if (!upgraded) {
      // The same security set as every other own answer (writeRawResponse adds no-store and nosniff itself).
      const out: Record<string, string> = {};
      for (const k in OWN_SECURITY_HEADERS) if (k.toLowerCase() !== 'x-content-type-options') out[k] = OWN_SECURITY_HEADERS[k] as string;
      if (this.secure && this.policy.hsts) out['strict-transport-security'] = this.policy.hsts;
      writeRawResponse(socket, err.status, { ...out, 'X-Request-Id': this.id, ...err.headers }, renderError(err, this.id, false));
    }
    return true;
  }

  /**
   * An answer of the gateway's own: a preflight, a webhook acknowledgement, a token, a page.
   * Its outcome is `answered` unless given, or the refusal already recorded (a sign-in form
   * shown again after a failure is a denial).
   */
  answer(res: ServerResponse, status: number, opts: AnswerOptions = {}): void {
    if (!this.error) this.outcome = opts.outcome ?? 'answered';
    this.status = status;
    this.write(res, status, opts.body, opts.headers, opts.page, true, opts.language);
  }

  /** A redirect of the gateway's own, with no body. */
  redirect(res: ServerResponse, status: number, location: string, headers?: Extra): void {
    this.answer(res, status, { headers: { ...headers, location } });
  }

  private write(res: ServerResponse, status: number, body: ErrorBody | undefined, extra: Extra | undefined, page: PageHeaders | undefined, withStepHeaders: boolean, language?: Language): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const out: Record<string, string | number | string[]> = { ...OWN_SECURITY_HEADERS, 'cache-control': 'no-store' };
    if (page) {
      out['content-security-policy'] = page.csp;
      if (page.frameOptions) out['x-frame-options'] = page.frameOptions;
      if (page.referrerPolicy) out['referrer-policy'] = page.referrerPolicy;
    }
    out['x-request-id'] = this.id;
    if (this.secure && this.policy.hsts) out['strict-transport-security'] = this.policy.hsts;
    if (extra) for (const k in extra) out[k.toLowerCase()] = extra[k] as string;
    if (withStepHeaders) Object.assign(out, this.headers);
    if (this.cookies.length > 0) out['set-cookie'] = [...this.cookies];
    if (language) {
      out['content-language'] = language;
      // Added to a step's Vary (CORS: Origin), not in its place: caches must key on both.
      const vary = typeof out.vary === 'string' && out.vary.trim() !== '' ? out.vary : undefined;
      out.vary = !vary ? 'Accept-Language' : /(^|,)\s*(\*|accept-language)\s*(,|$)/i.test(vary) ? vary : `${vary}, Accept-Language`;
    }
    if (body) {
      out['content-type'] = body.contentType;
      out['content-length'] = Buffer.byteLength(body.body);
    }
    res.writeHead(status, out);
    res.end(res.req.method === 'HEAD' ? undefined : body?.body);
  }
}
