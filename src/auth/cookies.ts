import { stringifySetCookie } from 'cookie';

/**
 * The gateway's cookies. The `__Host-` prefix makes browsers refuse them unless Secure,
 * Path=/ and host-only, so a sibling subdomain cannot plant or overwrite them. The names
 * cannot collide with NocoDB's (`refresh_token`) or Metabase's (`metabase.*`).
 */
export const ACCESS_COOKIE = '__Host-crmgw_at';
export const REFRESH_COOKIE = '__Host-crmgw_rt';
export const CSRF_COOKIE = '__Host-crmgw_csrf';
/** An identity-provider sign-in in progress: its `state` (src/auth/oidc/endpoints.ts). */
export const OIDC_STATE_COOKIE = '__Host-crmgw_oidc';
/** The SSO hand-off's state (src/auth/sso/handoff.ts): only the browser that began it may finish it. */
export const SSO_STATE_COOKIE = '__Host-crmgw_sso';
/** A sign-in between its first and second factor (src/auth/mfa/pending.ts). */
export const MFA_COOKIE = '__Host-crmgw_mfa';
/**
 * The security overview's sign-in (src/admin/session.ts): plain HTTP on loopback, so not
 * `__Host-`. Cookies are not scoped by port, so a browser sends them to a route on the same
 * loopback name too; listed here so the forwarder strips them like the others.
 */
export const ADMIN_SESSION_COOKIE = 'crmgw_admin';
export const ADMIN_CSRF_COOKIE = 'crmgw_admin_csrf';
export const GATEWAY_COOKIES = [ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE, OIDC_STATE_COOKIE, ADMIN_SESSION_COOKIE, ADMIN_CSRF_COOKIE, SSO_STATE_COOKIE, MFA_COOKIE] as const;

export function setCookie(name: string, value: string, maxAgeMs: number, sameSite: 'lax' | 'strict' = 'lax'): string {
  return stringifySetCookie({ name, value, httpOnly: true, secure: true, sameSite, path: '/', maxAge: Math.max(0, Math.floor(maxAgeMs / 1000)) });
}

export function clearCookie(name: string): string {
  return stringifySetCookie({ name, value: '', httpOnly: true, secure: true, sameSite: 'lax', path: '/', maxAge: 0, expires: new Date(0) });
}

/**
 * Every cookie of the Cookie header, keeping duplicates (the `cookie` package keeps only the
 * first, which hides cookie tossing). Names and values as sent.
 */
export function parseCookies(header: string | undefined): [string, string][] {
  if (!header) return [];
  const out: [string, string][] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out.push([part.slice(0, eq).trim(), part.slice(eq + 1).trim()]);
  }
  return out;
}

/** The one value of a cookie; undefined when absent; 'ambiguous' when sent more than once. */
export function singleCookie(cookies: readonly [string, string][], name: string): string | undefined | 'ambiguous' {
  const values = cookies.filter(([n]) => n === name);
  if (values.length > 1) return 'ambiguous';
  return values[0]?.[1];
}

/** The Cookie header without the gateway's own cookies: they are never for an upstream. */
export function withoutGatewayCookies(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = parseCookies(header).filter(([n]) => !(GATEWAY_COOKIES as readonly string[]).includes(n));
  return kept.length > 0 ? kept.map(([n, v]) => `${n}=${v}`).join('; ') : undefined;
}
