import { randomInt } from 'node:crypto';
import assert from 'node:assert/strict';
import type { RequestOptions, TestResponse } from './harness.js';
import { CookieJar } from './auth-gateway.js';

export const HTML_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** A random address in 198.18.0.0/15 (benchmarking range), so lockouts and login limits of one run never meet another's. */
export function randomClientIp(): string {
  return `198.${18 + randomInt(2)}.${randomInt(256)}.${1 + randomInt(254)}`;
}

function unescapeHtml(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
}

/** The value of a hidden form field of a gateway page. */
export function formField(html: string, name: string): string | undefined {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  return m?.[1] === undefined ? undefined : unescapeHtml(m[1]);
}

/** One Set-Cookie line by cookie name, with its attributes lower-cased. */
export function setCookieLine(res: TestResponse, name: string): { value: string; attrs: Map<string, string> } | undefined {
  const line = (res.headers['set-cookie'] ?? []).find((l) => l.startsWith(`${name}=`));
  if (!line) return undefined;
  const [pair = '', ...rest] = line.split(';');
  const attrs = new Map<string, string>();
  for (const a of rest) {
    const eq = a.indexOf('=');
    attrs.set((eq < 0 ? a : a.slice(0, eq)).trim().toLowerCase(), eq < 0 ? '' : a.slice(eq + 1).trim());
  }
  return { value: pair.slice(name.length + 1), attrs };
}

interface Requester {
  request(o: RequestOptions): Promise<TestResponse>;
}

/**
 * A browser-like client: its own cookie jar and its own client address (sent through a
 * trusted proxy hop, X-Forwarded-For), so per-address state stays its own.
 */
export class SessionClient {
  readonly jar = new CookieJar();

  constructor(
    private readonly gw: Requester,
    readonly host: string,
    readonly ip: string = randomClientIp(),
  ) {}

  async send(opts: RequestOptions & { html?: boolean; withCookies?: boolean }): Promise<TestResponse> {
    const headers: Record<string, string | string[]> = { 'x-forwarded-for': this.ip, accept: opts.html ? HTML_ACCEPT : 'application/json', ...opts.headers };
    if (opts.withCookies !== false && this.jar.cookies.size > 0 && headers.cookie === undefined) headers.cookie = this.jar.header();
    const res = await this.gw.request({ ...opts, host: opts.host ?? this.host, headers });
    this.jar.take(res);
    return res;
  }

  /** GET /auth/login: the CSRF cookie lands in the jar; returns the form's csrf and rd fields. */
  async openLogin(rd?: string): Promise<{ res: TestResponse; csrf: string; rd: string }> {
    const res = await this.send({ path: `/auth/login${rd === undefined ? '' : `?rd=${encodeURIComponent(rd)}`}`, html: true });
    assert.equal(res.status, 200, res.body.slice(0, 200));
    const csrf = formField(res.body, 'csrf');
    const field = formField(res.body, 'rd');
    assert.ok(csrf && field !== undefined, 'the login form has csrf and rd fields');
    return { res, csrf, rd: field };
  }

  /** POST /auth/login the way the form does (same-host Origin). */
  async postLogin(fields: Record<string, string>, headers: Record<string, string> = {}): Promise<TestResponse> {
    return this.send({
      method: 'POST',
      path: '/auth/login',
      html: true,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: `https://${this.host}`, ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** The whole login: form, then POST; asserts the 303. */
  async login(username: string, password: string, rd?: string): Promise<TestResponse> {
    const form = await this.openLogin(rd);
    const res = await this.postLogin({ csrf: form.csrf, rd: form.rd, username, password });
    assert.equal(res.status, 303, `login of ${username}: ${res.status} ${res.body.slice(0, 300)}`);
    return res;
  }
}

/**
 * One browser across hosts: a SessionClient (cookie jar) per host, as a browser keeps host-only
 * cookies, all from one client address. `navigate` follows redirects from host to host.
 */
export class HostBrowser {
  readonly hosts = new Map<string, SessionClient>();
  readonly ip = randomClientIp();

  /** `port`: every hop must stay on https at this port (the public port the gateway builds URLs with). */
  constructor(
    private readonly gw: Requester,
    private readonly port?: number,
  ) {}

  on(host: string): SessionClient {
    let c = this.hosts.get(host);
    if (!c) this.hosts.set(host, (c = new SessionClient(this.gw, host, this.ip)));
    return c;
  }

  /** Navigates until an answer that is not a redirect; returns every hop (URL and answer). */
  async navigate(url: string, max = 12): Promise<{ url: string; res: TestResponse }[]> {
    const hops: { url: string; res: TestResponse }[] = [];
    let next = url;
    for (let i = 0; i < max; i++) {
      const u = new URL(next);
      if (this.port !== undefined) {
        assert.equal(u.protocol, 'https:', `hop ${next}`);
        assert.equal(u.port, String(this.port), `hop ${next}`);
      }
      const res = await this.on(u.hostname).send({ path: `${u.pathname}${u.search}`, html: true });
      hops.push({ url: next, res });
      if (![301, 302, 303, 307, 308].includes(res.status)) return hops;
      next = new URL(String(res.headers.location), next).href;
    }
    assert.fail(`more than ${max} redirects from ${url}`);
  }
}
