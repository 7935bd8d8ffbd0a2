/** One route: where it matches, where it goes, and the checks on the way (docs/configuration.md, "Routes"). */
import { z } from 'zod';
import { upstreamTlsProblems } from '../../tls/upstream-tls.js';
import { DEFAULTS } from '../defaults.js';
import { bool, cidrList, corsOrigins, duration, headerEdits, hostname, list, responseHeaderEdits, size, upstreamUrl } from './fields.js';

export const AUTH_MODES = ['none', 'jwt', 'session', 'jwt-or-session', 'whatsapp'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

const rateLimit = z.strictObject({
  // At least a second (Retry-After counts seconds), at most a day (timers and TTLs stay sane).
  window: duration.pipe(z.number().min(1_000, 'window must be at least 1s').max(86_400_000, 'window must be at most 24h')),
  max: z.number().int().positive(),
  by: z.enum(['ip', 'user']).default('ip'),
  /** While the shared store (Redis) is unreachable: open lets requests pass, closed refuses them (503). */
  failMode: z.enum(['open', 'closed']).default(DEFAULTS.rateLimitFailMode),
  ipv6Prefix: z.number().int().min(1).max(128).default(DEFAULTS.rateLimitIpv6Prefix),
});

const cors = z.strictObject({
  origins: corsOrigins,
  /** Off unless asked: credentialed cross-origin calls let any listed origin act as the user. */
  credentials: bool.default(false),
  methods: list.prefault([...DEFAULTS.corsMethods]),
  headers: list.prefault([...DEFAULTS.corsHeaders]),
  exposeHeaders: list.prefault([...DEFAULTS.corsExposeHeaders]),
  maxAge: duration.prefault(DEFAULTS.corsMaxAge),
});

/**
 * Requests checked against the upstream's OpenAPI 3.0/3.1 description (src/openapi/): a file
 * or an http(s) URL (FastAPI's `/openapi.json`), read at startup and on SIGHUP. `report`
 * logs what `enforce` would refuse, for rolling it out.
 */
const openapi = z.strictObject({
  spec: z.string().min(1),
  mode: z.enum(['enforce', 'report']).default('enforce'),
});

/**
 * An https upstream checked against a CA of its own (file), under `serverName` (default: the
 * upstream URL's host, never the public Host sent), with a client certificate when the
 * upstream asks for one (`cert` + `key`). Files are read and checked here (src/tls/upstream-tls.ts).
 */
const upstreamTls = z
  .strictObject({
    ca: z.string().min(1).optional(),
    serverName: hostname.optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
  })
  .superRefine((t, ctx) => {
    if (!!t.cert !== !!t.key) ctx.addIssue({ code: 'custom', path: [t.cert ? 'key' : 'cert'], message: 'a client certificate needs both cert and key' });
    for (const p of upstreamTlsProblems(t)) ctx.addIssue({ code: 'custom', path: [p.path], message: p.message });
  });

export const routeSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'use lower-case letters, digits, - and _'),
    host: hostname.optional(),
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'path prefix must start with / and use plain URL characters')
      .refine((p) => !p.split('/').some((s) => s === '.' || s === '..') && !p.includes('//'), 'path prefix must be in normal form')
      .transform((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p))
      .optional(),
    stripPrefix: bool.default(false),
    upstream: upstreamUrl,
    auth: z.enum(AUTH_MODES),
    roles: z.array(z.string().min(1)).default([]),
    rateLimit: rateLimit.optional(),
    cors: cors.optional(),
    ipAllowlist: cidrList.prefault([]),
    timeout: duration.prefault(DEFAULTS.routeTimeout),
    maxBody: size.prefault(DEFAULTS.maxBody),
    allowEncodedSlashes: bool.default(false),
    websocket: bool.default(true),
    requestHeaders: headerEdits.optional(),
    responseHeaders: responseHeaderEdits.optional(),
    /**
     * On by default (as Caddy): the CRM API, NocoDB and Metabase build absolute URLs (redirects,
     * socket.io, links) from Host, so they must see the public one. Off for an upstream that routes
     * by its own host name (a virtual host, an https upstream checked by name).
     */
    preserveHost: bool.default(true),
    /** Forward the client's gateway bearer token to the upstream (off: stripped after verification). */
    passCredentials: bool.default(false),
    /**
     * Send the upstream a signed identity assertion (`X-Gateway-Assertion`, src/auth/assertion/).
     * Unset: on for `jwt`, `session` and `jwt-or-session` routes.
     */
    identityAssertion: bool.optional(),
    openapi: openapi.optional(),
    /**
     * `required`: only principals that proved a second factor (TOTP, a recovery code, a passkey)
     * pass authorization; password-only sessions are sent to sign in again with it, bearer tokens
     * refused (MFA_REQUIRED: client credentials prove no second factor). See src/auth/mfa/.
     */
    mfa: z.literal('required').optional(),
    upstreamTls: upstreamTls.optional(),
  })
  .superRefine((r, ctx) => {
    if (!r.host && !r.path) ctx.addIssue({ code: 'custom', message: 'a route needs a host, a path, or both' });
    if (r.stripPrefix && !r.path) ctx.addIssue({ code: 'custom', path: ['stripPrefix'], message: 'stripPrefix needs a path' });
    if (r.auth === 'none' && r.roles.length > 0) ctx.addIssue({ code: 'custom', path: ['roles'], message: 'roles need an auth mode other than none' });
    if (r.identityAssertion === true && (r.auth === 'none' || r.auth === 'whatsapp')) ctx.addIssue({ code: 'custom', path: ['identityAssertion'], message: 'an identity assertion needs a jwt, session or jwt-or-session route (it asserts who signed in)' });
    if (r.rateLimit?.by === 'user' && r.auth === 'none') ctx.addIssue({ code: 'custom', path: ['rateLimit', 'by'], message: 'by: user needs an authenticated route' });
    if (r.upstreamTls && !/^https:\/\//i.test(r.upstream)) ctx.addIssue({ code: 'custom', path: ['upstreamTls'], message: 'upstreamTls needs an https:// upstream' });
    // The webhook reads and verifies its own body; a second reader would race it.
    if (r.openapi && r.auth === 'whatsapp') ctx.addIssue({ code: 'custom', path: ['openapi'], message: 'openapi validation does not apply to auth: whatsapp routes' });
    // The gateway matches `{param}` against `a%2Fb` as one segment; uvicorn decodes %2F first and
    // may route the request elsewhere: the operation checked would not be the one that runs.
    if (r.openapi && r.allowEncodedSlashes) {
      ctx.addIssue({ code: 'custom', path: ['allowEncodedSlashes'], message: 'allowEncodedSlashes cannot be used with openapi: the spec would be checked against one path and the upstream, which decodes %2F, may route another; drop one of them' });
    }
  });

/** The route list: at least one, names unique, no two on the same host and path. */
export const routesSchema = z
  .array(routeSchema)
  .min(1, 'at least one route is needed')
  .superRefine((routes, ctx) => {
    const seen = new Map<string, number>();
    const keys = new Map<string, string>();
    routes.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate route name ${r.name}` });
      seen.set(r.name, i);
      const key = `${r.host ?? '*'} ${r.path ?? '/'}`;
      const other = keys.get(key);
      if (other) ctx.addIssue({ code: 'custom', path: [i], message: `same host and path as route ${other}` });
      keys.set(key, r.name);
    });
  });
