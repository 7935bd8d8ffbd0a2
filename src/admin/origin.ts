import type { IncomingMessage } from 'node:http';
import { sameSiteRequest } from '../auth/csrf.js';

/** The admin listener is plain HTTP on loopback; behind an ssh tunnel or a TLS proxy, https. */
const ADMIN_SCHEMES = ['http:', 'https:'];
/** Names of this machine that a browser on it uses for the loopback admin listener. */
const LOOPBACK_NAMES = ['127.0.0.1', '[::1]', 'localhost'];
const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/;

/**
 * Whether the Host header names this listener: loopback, or a name `admin.hosts` lists. A page
 * on another site can point its own name at 127.0.0.1 (DNS rebinding) and then talk to the admin
 * listener as "same origin"; its requests carry its name in Host, and are refused here.
 */
export function createHostCheck(extra: readonly string[]): (req: IncomingMessage) => boolean {
  const allowed = new Set([...LOOPBACK_NAMES, ...extra.map((h) => h.toLowerCase().replace(/\.$/, ''))]);
  return (req) => {
    const m = HOST_HEADER.exec((req.headers.host ?? '').toLowerCase());
    return m !== null && allowed.has((m[1] as string).replace(/\.$/, ''));
  };
}

/**
 * A form POST from the admin page itself: Origin (or, without it, Referer) is this very
 * origin, and Sec-Fetch-Site, when the browser sends it, says same-origin. Stricter than a
 * SameSite cookie alone: a request with neither Origin nor Referer is refused too (the pages
 * send `Referrer-Policy: same-origin`, so a real browser always sends Origin here).
 */
export function sameOriginForm(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  return sameSiteRequest(req, ADMIN_SCHEMES);
}
