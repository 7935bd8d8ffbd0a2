import { normalizePath } from '../routing/normalize-path.js';

const MAX_LENGTH = 2048;

/**
 * Where to send a browser after login: a relative path on this host, or an https URL on one of
 * the gateway's own hosts and port. Everything else becomes `/`. Written against the open
 * redirects oauth2-proxy and Pomerium fixed: `//evil`, `/\evil`, tab/CR/LF/VT inside the
 * URL, userinfo, look-alike suffix domains, other ports, other schemes, schemeless hosts.
 */
export function safeReturnTo(rd: string | null | undefined, opts: { host: string; hosts: ReadonlySet<string>; port: number }): string {
  if (!rd || rd.length > MAX_LENGTH) return '/';
  // Control characters, spaces, non-ASCII and backslashes: browsers strip or reinterpret them.
  if (/[^\x21-\x7e]/.test(rd) || rd.includes('\\')) return '/';
  if (rd.startsWith('/')) {
    if (rd.startsWith('//')) return '/';
    let url: URL;
    try {
      url = new URL(rd, `https://${opts.host}`);
    } catch {
      return '/';
    }
    if (url.host !== opts.host && url.hostname !== opts.host) return '/';
    try {
      return `${normalizePath(url.pathname)}${url.search}`;
    } catch {
      return '/';
    }
  }
  let url: URL;
  try {
    url = new URL(rd);
  } catch {
    return '/';
  }
  if (url.protocol !== 'https:' || url.username || url.password) return '/';
  if (!opts.hosts.has(url.hostname)) return '/';
  const port = url.port === '' ? 443 : Number(url.port);
  if (port !== opts.port) return '/';
  if (!/^https:\/\/[^/?#]+(\/|$)/i.test(rd)) return '/';
  try {
    // A path of `//evil` (or `///evil`) is harmless in this absolute URL, but not once a hop cuts
    // the origin off to redirect on the same host (the SSO callback does): `//evil.example/x` is
    // then another site. normalizePath refuses encoded slashes and backslashes, raw or encoded.
    if (/^\/[/\\]/.test(url.pathname)) return '/';
    normalizePath(url.pathname);
  } catch {
    return '/';
  }
  return url.href;
}
