/**
 * A host name's root dot, before a numeric port or at the end (`a.example.`, `a.example.:8443`).
 * Not "any dot before a colon": inside a bracketed IPv6 literal that would drop a dot the
 * literal has (the Host `[::1.:2]` would read as `[::1:2]`).
 */
const ROOT_DOT = /\.(?=:\d+$|$)/;

export interface SameHostOptions {
  /**
   * Also accept a URL that spells the Host exactly, root dot included (`https://a.example.` for
   * `Host: a.example.`). That page is this very origin, so CORS takes it as its own; the CSRF
   * check has always compared with the dot dropped only, and refuses it (fail closed).
   */
  readonly dottedHost?: boolean;
}

/**
 * Whether `url` (a request's Origin, or its Referer) names the host the request was sent to, as
 * its Host header says. The URL side is as the URL parser writes it (lower case, default port
 * dropped, IPv6 in canonical form); the Host side is only lower-cased and loses its root dot, so
 * `Host: a.example:443` or a non-canonical IPv6 literal never matches. The scheme is the caller's
 * to check.
 */
export function namesRequestHost(url: URL, hostHeader: string | undefined, opts: SameHostOptions = {}): boolean {
  const host = (hostHeader ?? '').toLowerCase();
  return url.host === host.replace(ROOT_DOT, '') || (opts.dottedHost === true && url.host === host);
}
