import { GATEWAY_COOKIES } from '../auth/cookies.js';

/**
 * An upstream's `Set-Cookie`, scoped to the public host the client used. The upstream believes
 * it is `127.0.0.1` or `crm-api`: a `Domain` naming that is meaningless to the browser, and a
 * `Domain` naming a parent of the public host (`.example.com`) would toss the cookie onto every
 * sibling service (`api.`, `metabase.`), so every `Domain` is dropped and the cookie is
 * host-only. Over HTTPS it is made `Secure`. Under a stripped path prefix, its `Path` gets the
 * prefix back (nginx's proxy_cookie_path). A cookie named like one of the gateway's own is
 * refused outright: no upstream may plant or overwrite the gateway's session.
 *
 * Returns undefined when the cookie must not reach the client.
 */
export function scopeUpstreamCookie(value: string, opts: { secure: boolean; prefix: string }): string | undefined {
  const parts = value.split(';');
  const pair = parts[0] ?? '';
  const eq = pair.indexOf('=');
  const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
  if (name === '' || (GATEWAY_COOKIES as readonly string[]).includes(name) || name.toLowerCase().startsWith('__host-crmgw')) return undefined;
  const attrs: string[] = [];
  let secure = false;
  for (const raw of parts.slice(1)) {
    const attr = raw.trim();
    if (attr === '') continue;
    const key = attr.split('=', 1)[0]?.trim().toLowerCase();
    if (key === 'domain') continue;
    if (key === 'secure') secure = true;
    if (key === 'path' && opts.prefix) {
      const path = attr.slice(attr.indexOf('=') + 1).trim();
      attrs.push(path.startsWith('/') ? `Path=${opts.prefix}${path === '/' ? '' : path}` : attr);
      continue;
    }
    attrs.push(attr);
  }
  if (opts.secure && !secure) attrs.push('Secure');
  return [pair.trim(), ...attrs].join('; ');
}
