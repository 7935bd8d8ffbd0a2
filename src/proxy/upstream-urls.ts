import { normalizeIp } from '../net/ip.js';

/**
 * URLs in upstream responses that name the upstream itself. An application behind the gateway
 * builds absolute URLs from what it sees: FastAPI's trailing-slash redirect comes back as
 * `http://127.0.0.1:8000/v1/companies/` (or `https://...` when uvicorn trusts
 * X-Forwarded-Proto). A client that follows it talks to the upstream directly, around auth,
 * limits and audit, and the internal address leaks. As nginx's `proxy_redirect default`,
 * such URLs are rewritten to the public origin the client used; URLs of other origins and
 * relative ones pass untouched.
 */

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 };

/** Names that always mean "this machine" to an upstream, whatever the route's configured host. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

const HAS_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

export interface PublicView {
  /** `https` or `http`: what the client used. */
  readonly scheme: 'https' | 'http';
  /** The client's Host header, lower-cased (host and optional port). */
  readonly authority: string;
  /** The route's path prefix when the gateway strips it before forwarding, else ''. */
  readonly prefix: string;
}

function bareHost(u: URL): string {
  return u.hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

/** `::ffff:7f00:1`, the form URL gives `[::ffff:127.0.0.1]`, as the IPv4 address it maps. */
function unmapHex(host: string): string {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(host);
  if (!m) return host;
  const [hi, lo] = [parseInt(m[1] ?? '0', 16), parseInt(m[2] ?? '0', 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function effectivePort(u: URL): number | undefined {
  return u.port ? Number(u.port) : DEFAULT_PORTS[u.protocol];
}

/** Same port when written the same way (both default, or the same number) or meaning the same port. */
function samePort(a: URL, b: URL): boolean {
  return a.port === b.port || (effectivePort(a) !== undefined && effectivePort(a) === effectivePort(b));
}

/**
 * The address a response came from (the connected socket's peer), or every address the
 * upstream was connected at (normalized, as `normalizeIp` gives them): the forwarder's
 * connection pool does not say which of its sockets carried a response.
 */
export type Connected = string | ReadonlySet<string> | undefined;

/** The origin an upstream answers as: its configured host, the address connected to, or loopback names. */
export class UpstreamOrigin {
  private readonly names: ReadonlySet<string>;

  constructor(private readonly target: URL) {
    this.names = new Set([bareHost(target), ...LOOPBACK_NAMES]);
  }

  /** Whether `u` names this upstream; `connected` is the address (or addresses) it answers from. */
  isOrigin(u: URL, connected: Connected): boolean {
    if (DEFAULT_PORTS[u.protocol] === undefined) return false;
    const host = bareHost(u);
    const ip = normalizeIp(unmapHex(host))?.address ?? host;
    const isUpstream = this.names.has(ip) || (typeof connected === 'string' ? normalizeIp(connected)?.address === ip : connected?.has(ip) === true);
    return isUpstream && samePort(u, this.target);
  }
}

/**
 * `value` with the upstream's origin replaced by the public one; the public host named with
 * the wrong scheme (an app that does not know it is behind TLS) gets the client's scheme.
 * Anything else, relative URLs included, is returned as it came.
 */
export function rewriteUpstreamUrl(value: string, upstream: UpstreamOrigin, connected: Connected, view: PublicView): string {
  // Read as a browser reads it (WHATWG URL): tabs and newlines vanish, `\` is `/`, and
  // `http:/x`, `http:x` and `\\x` are absolute. Matching on the raw text missed those.
  const cleaned = value.replace(/[\t\r\n]/g, '').trim().replace(/\\/g, '/');
  const base = `${view.scheme}://${view.authority}`;
  let u: URL;
  let pub: URL;
  try {
    pub = new URL(base);
    u = new URL(cleaned, pub);
  } catch {
    return value;
  }
  // Relative (same origin as the base, no scheme or authority of its own): untouched.
  if (!HAS_SCHEME.test(cleaned) && !cleaned.startsWith('//') && u.origin === pub.origin) return value;
  const rest = `${u.pathname}${u.search}${u.hash}`;
  if (upstream.isOrigin(u, connected)) return `${base}${view.prefix}${view.prefix && rest === '/' ? '' : rest}`;
  if (bareHost(u) === bareHost(pub) && samePort(u, pub) && u.protocol !== pub.protocol && (u.protocol === 'http:' || u.protocol === 'https:')) {
    return `${base}${rest}`;
  }
  return value;
}

/**
 * `Refresh: 5; url=http://127.0.0.1:8000/next` (RFC-less but every browser follows it): the
 * URL part is rewritten like a Location.
 */
export function rewriteRefresh(value: string, upstream: UpstreamOrigin, connected: Connected, view: PublicView): string {
  // As HTML's refresh parsing: a delay, an optional `;` or `,`, an optional `url=`, then the
  // URL, quoted or not (an unclosed quote runs to the end).
  const m = /^(\s*[\d.]+\s*[;,]?\s*(?:url\s*=\s*)?)(['"]?)(.*?)(\2?)(\s*)$/is.exec(value);
  if (!m || !m[3]) return value;
  const rewritten = rewriteUpstreamUrl(m[3], upstream, connected, view);
  return rewritten === m[3] ? value : `${m[1]}${m[2]}${rewritten}${m[4]}${m[5]}`;
}
