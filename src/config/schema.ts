import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { Cron } from 'croner';
import { parseDuration, parseSize } from './units.js';
import { IpSet } from '../net/ip.js';
import { DEFAULT_LANGUAGE, LANGUAGES } from '../i18n/language.js';
import { givenSetting, oidcSchema } from '../auth/oidc/config.js';
import { upstreamTlsProblems } from '../tls/upstream-tls.js';

/** Defaults, named once. */
export const DEFAULTS = {
  domain: 'localhost',
  httpsPort: 8443,
  httpPort: 8880,
  adminPort: 9090,
  listenAddress: '0.0.0.0',
  adminAddress: '127.0.0.1',
  certFile: 'certs/gateway.crt',
  keyFile: 'certs/gateway.key',
  hstsMaxAge: 31_536_000,
  corsOrigins: ['localhost', '127.0.0.1'],
  maxHeaderSize: 16 * 1024,
  maxUrlLength: 8 * 1024,
  headersTimeout: '15s',
  requestTimeout: '120s',
  keepAliveTimeout: '5s',
  shutdownTimeout: '10s',
  /** As nginx's send_timeout: how long a client may read nothing of an answer before it is cut. */
  sendTimeout: '60s',
  routeTimeout: '60s',
  maxBody: '1mb',
  /**
   * Bytes of request bodies the whole process may hold while reading them whole (OpenAPI JSON
   * bodies, WhatsApp webhook payloads); past it such a request is refused 503 instead of
   * buffered. 64 MB is sixteen 4 MB bodies at once, far above a CRM's honest load.
   */
  maxBufferedBodies: '64mb',
  /** How long a body read whole may take to arrive, from its first byte read to its last (408 after). */
  bodyReadTimeout: '15s',
  logLevel: 'info',
  logDir: 'logs',
  logRetentionDays: 30,
  /** Log lines the gateway may hold in memory while the disk is slow or refusing (per stream). */
  logMaxBacklog: '16mb',
  alertCooldown: '10m',
  alertFailedLoginWindow: '10m',
  alertFailedLoginsPerUser: 5,
  alertFailedLoginsPerIp: 20,
  alertSuspiciousWindow: '1m',
  alertRateLimitedPerIp: 50,
  alertRejectedPathsPerIp: 20,
  alertUpstreamWindow: '1m',
  alertUpstreamErrors: 5,
  alertResourceInterval: '10s',
  alertEventLoopLag: '500ms',
  alertMaxRss: '1gb',
  alertMaxHeapRatio: 0.9,
  backupSchedule: '0 2 * * *',
  backupRetentionDays: 7,
  backupDir: 'backups',
  backupKeyFile: 'secrets/backup.key',
  /** S3-compatible services mostly ignore the region, but the signature needs one. */
  backupS3Region: 'us-east-1',
  /** IPv6 clients share one rate-limit bucket per /64: one host usually holds a whole /64. */
  rateLimitIpv6Prefix: 64,
  rateLimitFailMode: 'open',
  workers: 1,
  /** Meta wants a quick 200: past this the payload is acknowledged as queued. */
  whatsappAckTimeout: '5s',
  whatsappRetryMin: '1s',
  whatsappRetryMax: '60s',
  /** Queued webhook payloads at which new ones are refused (503, Meta retries) instead of stored. */
  whatsappMaxQueued: 10_000,
} as const;

const duration = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. 500ms, 60s, 10m)` });
      return z.NEVER;
    }
    return ms;
  });

const size = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a size: ${JSON.stringify(v)} (use e.g. 512kb, 1mb)` });
      return z.NEVER;
    }
    return bytes;
  });

const port = z
  .union([z.number(), z.string().regex(/^\d+$/, 'not a port number').transform(Number)])
  .pipe(z.number().int().min(0).max(65_535));

const bool = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v)),
]);

/** A list given as YAML list or comma-separated string; each element may itself hold commas. */
const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== ''));

const cidrList = list.superRefine((entries, ctx) => {
  try {
    new IpSet(entries);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** A DNS name in normal form: lower case, no trailing dot. */
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const normalHost = (h: string): string => h.trim().toLowerCase().replace(/\.$/, '');

const hostname = z
  .string()
  .transform(normalHost)
  .refine((h) => HOST_NAME.test(h), { message: 'not a valid host name' });

const upstreamUrl = z.string().superRefine((u, ctx) => {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a URL: ${JSON.stringify(u)}` });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'upstream must be http:// or https://' });
  if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'upstream URL must not carry credentials' });
  if (url.search || url.hash) ctx.addIssue({ code: 'custom', message: 'upstream URL must not have a query or fragment' });
});

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name').transform((h) => h.toLowerCase());
const headerEdits = z.strictObject({
  set: z.record(headerName, z.string()).prefault({}),
  remove: z.array(headerName).default([]),
});
/** `keep`: banner headers (Server, X-Powered-By, ...) that this route lets through; all are dropped by default. */
const responseHeaderEdits = headerEdits.extend({ keep: z.array(headerName).default([]) });

/**
 * A CORS origin: `*`, a bare host name (any scheme and port), or an exact http(s) origin with no
 * path. Checked here: a bad one (`https://`) used to crash startup with a raw TypeError.
 */
const corsOrigin = z.string().superRefine((o, ctx) => {
  if (o === '*') return;
  if (!/^https?:\/\//i.test(o)) {
    if (!HOST_NAME.test(normalHost(o)) && !/^\[?[0-9a-f:.]+\]?$/i.test(o)) {
      ctx.addIssue({ code: 'custom', message: `not an origin or host name: ${JSON.stringify(o)} (use https://app.example.com or app.example.com)` });
    }
    return;
  }
  let url: URL | undefined;
  try {
    url = new URL(o);
  } catch {
    url = undefined;
  }
  if (!url || !url.hostname || url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '') || /\/.+$/.test(o.replace(/^https?:\/\//i, ''))) {
    ctx.addIssue({ code: 'custom', message: `not an origin: ${JSON.stringify(o)} (scheme, host and optional port only, e.g. https://app.example.com:8443)` });
  }
});
const corsOrigins = list.pipe(z.array(corsOrigin));

/**
 * Response headers browser code may read cross-origin by default: the request id for support,
 * and the rate-limit headers (draft-ietf-httpapi-ratelimit-headers, Retry-After) to back off.
 */
export const DEFAULT_CORS_EXPOSE = ['X-Request-Id', 'RateLimit', 'RateLimit-Policy', 'Retry-After'];

export const AUTH_MODES = ['none', 'jwt', 'session', 'jwt-or-session', 'whatsapp'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

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
    rateLimit: z
      .strictObject({
        // At least a second (Retry-After counts seconds), at most a day (timers and TTLs stay sane).
        window: duration.pipe(z.number().min(1_000, 'window must be at least 1s').max(86_400_000, 'window must be at most 24h')),
        max: z.number().int().positive(),
        by: z.enum(['ip', 'user']).default('ip'),
        /** While the shared store (Redis) is unreachable: open lets requests pass, closed refuses them (503). */
        failMode: z.enum(['open', 'closed']).default(DEFAULTS.rateLimitFailMode),
        ipv6Prefix: z.number().int().min(1).max(128).default(DEFAULTS.rateLimitIpv6Prefix),
      })
      .optional(),
    cors: z
      .strictObject({
        origins: corsOrigins,
        /** Off unless asked: credentialed cross-origin calls let any listed origin act as the user. */
        credentials: bool.default(false),
        methods: list.prefault(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
        headers: list.prefault(['Authorization', 'Content-Type', 'X-Requested-With', 'X-Request-Id']),
        exposeHeaders: list.prefault(DEFAULT_CORS_EXPOSE),
        maxAge: duration.prefault(600_000),
      })
      .optional(),
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
    /**
     * Requests checked against the upstream's OpenAPI 3.0/3.1 description (src/openapi/): a file
     * or an http(s) URL (FastAPI's `/openapi.json`), read at startup and on SIGHUP. `report`
     * logs what `enforce` would refuse, for rolling it out.
     */
    openapi: z
      .strictObject({
        spec: z.string().min(1),
        mode: z.enum(['enforce', 'report']).default('enforce'),
      })
      .optional(),
    /**
     * `required`: only principals that proved a second factor (TOTP, a recovery code, a passkey)
     * pass authorization; password-only sessions are sent to sign in again with it, bearer tokens
     * refused (MFA_REQUIRED: client credentials prove no second factor). See src/auth/mfa/.
     */
    mfa: z.literal('required').optional(),
    /**
     * An https upstream checked against a CA of its own (file), under `serverName` (default: the
     * upstream URL's host, never the public Host sent), with a client certificate when the
     * upstream asks for one (`cert` + `key`). Files are read and checked here (src/tls/upstream-tls.ts).
     */
    upstreamTls: z
      .strictObject({
        ca: z.string().min(1).optional(),
        serverName: hostname.optional(),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
      })
      .superRefine((t, ctx) => {
        if (!!t.cert !== !!t.key) ctx.addIssue({ code: 'custom', path: [t.cert ? 'key' : 'cert'], message: 'a client certificate needs both cert and key' });
        for (const p of upstreamTlsProblems(t)) ctx.addIssue({ code: 'custom', path: [p.path], message: p.message });
      })
      .optional(),
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

/**
 * Which alert may block what (alerts of src/audit/alerts.ts), and why not otherwise: a block must
 * fall on whoever caused the alert, never on someone an attacker can name. The reason, or
 * undefined when the pair is safe.
 * - `block: user` only after a successful sign-in (`new_ip_for_user`): the failure alerts name
 *   whatever user name was typed, so blocking it would let anyone lock any account out.
 * - `block: ip` only when the alert's subject is the offending address (the per-address counts):
 *   the per-account alerts carry the address of whoever made the Nth failure, so an attacker
 *   keeps an account one failure short and its owner's next typo blocks their own network.
 */
function unsafeContainment(on: string, block: 'ip' | 'user'): string | undefined {
  const byAddress = ['failed_logins_ip', 'suspicious_rate_limited', 'suspicious_rejected_paths'];
  const bySignIn = ['new_ip_for_user'];
  if (block === 'user') {
    if (bySignIn.includes(on)) return undefined;
    if (on === 'failed_logins_user' || on === 'account_locked') {
      return `alert ${on} names the user name an unauthenticated client typed: blocking it would let anyone block any account; block: user only for ${bySignIn.join(', ')} (after a successful sign-in)`;
    }
    return `alert ${on} names no signed-in user; block: user only for ${bySignIn.join(', ')}`;
  }
  if (byAddress.includes(on)) return undefined;
  if (on === 'failed_logins_user' || on === 'account_locked') {
    return `alert ${on} counts failures against an account from any address: its address is whoever made the last failure (an attacker keeps the count one short, the owner's typo blocks their network); block: ip only for ${byAddress.join(', ')}`;
  }
  return `alert ${on} is not about an offending address; block: ip only for ${byAddress.join(', ')}`;
}

export const gatewaySchema = z.strictObject({
  env: z.enum(['development', 'production']).default('development'),
  domain: hostname.default(DEFAULTS.domain),
  listen: z
    .strictObject({
      address: z.string().default(DEFAULTS.listenAddress),
      httpsPort: port.default(DEFAULTS.httpsPort),
      httpPort: port.default(DEFAULTS.httpPort),
      adminAddress: z.string().default(DEFAULTS.adminAddress),
      adminPort: port.default(DEFAULTS.adminPort),
      /** The port clients see for HTTPS, used in redirects (e.g. 443 behind a port forward). */
      publicHttpsPort: port.optional(),
    })
    .prefault({}),
  tls: z
    .strictObject({
      certFile: z.string().default(DEFAULTS.certFile),
      keyFile: z.string().default(DEFAULTS.keyFile),
      hstsMaxAge: z.number().int().min(0).default(DEFAULTS.hstsMaxAge),
      hstsIncludeSubDomains: bool.default(true),
      hstsPreload: bool.default(false),
      watch: bool.default(true),
      /**
       * ACME (RFC 8555): the certificate for every routed host is obtained and renewed from
       * `directoryUrl` and written to certFile/keyFile (src/tls/acme/). Unset: files by hand.
       */
      acme: z
        .strictObject({
          directoryUrl: z.string().refine((u) => /^https:\/\//i.test(u) && URL.canParse(u), 'an https:// URL (RFC 8555 §6.1: ACME runs over HTTPS)').optional(),
          email: z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, 'an e-mail address').optional(),
          /** Extra CA (PEM) trusted for the directory only, for a private ACME server. */
          caFile: z.string().min(1).optional(),
          challenge: z.enum(['http-01', 'tls-alpn-01']).optional(),
        })
        // Each setting without the directory is named on its own path, so the message names its variable.
        .superRefine((a, ctx) => {
          if (a.directoryUrl) return;
          for (const key of ['email', 'caFile', 'challenge'] as const) {
            if (a[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'has no effect without ACME_DIRECTORY_URL (tls.acme.directoryUrl)' });
          }
        })
        .transform((a) => (a.directoryUrl ? { directoryUrl: a.directoryUrl, email: a.email, caFile: a.caFile, challenge: a.challenge ?? ('http-01' as const) } : undefined))
        .optional(),
    })
    .prefault({}),
  forceHttps: bool.default(true),
  trustedProxies: cidrList.prefault([]),
  corsOrigins: corsOrigins.prefault([...DEFAULTS.corsOrigins]),
  server: z
    .strictObject({
      maxHeaderSize: z.number().int().min(1024).max(1024 * 1024).default(DEFAULTS.maxHeaderSize),
      maxUrlLength: z.number().int().min(256).default(DEFAULTS.maxUrlLength),
      headersTimeout: duration.prefault(DEFAULTS.headersTimeout),
      requestTimeout: duration.prefault(DEFAULTS.requestTimeout),
      keepAliveTimeout: duration.prefault(DEFAULTS.keepAliveTimeout),
      shutdownTimeout: duration.prefault(DEFAULTS.shutdownTimeout),
      sendTimeout: duration.prefault(DEFAULTS.sendTimeout),
      maxBufferedBodies: size.prefault(DEFAULTS.maxBufferedBodies).pipe(z.number().int().min(64 * 1024, 'at least 64kb')),
      bodyReadTimeout: duration.prefault(DEFAULTS.bodyReadTimeout).pipe(z.number().min(1_000, 'at least 1s')),
      /** Worker processes (node:cluster) on this host; `auto` is one per core. More than one needs REDIS_URL. */
      workers: z
        .union([z.literal('auto'), z.number(), z.string().regex(/^\d+$/, 'a number or auto').transform(Number)])
        .transform((v) => (v === 'auto' ? availableParallelism() : v))
        .pipe(z.number().int().min(1).max(256))
        .default(DEFAULTS.workers),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** Token issuer and audience: required claims, checked on every token. */
      issuer: z.string().min(1).default('crm-gateway'),
      audience: z.string().min(1).default('crm'),
      /** Longest lifetime a token may have; longer ones are refused even when signed. */
      maxTokenTtl: duration.prefault('24h'),
      /** Browser access-token lifetime (refresh tokens renew it). */
      sessionTtl: duration.prefault('15m'),
      refreshTtl: duration.prefault('12h'),
      /** A refresh token presented again this soon after its first use is the same browser racing itself. */
      refreshReuseGrace: duration.prefault('10s').pipe(z.number().max(60_000, 'at most 60s')),
      clockSkew: duration.prefault('30s'),
      /**
       * One login for every session host (issue 14): the sign-in host holds the session and hands
       * each other host its own cookies through a one-time code. Default host: the first
       * `session`/`jwt-or-session` route's host (no new DNS name or certificate).
       */
      sso: z
        .strictObject({
          /** Off: each host signs in on its own, as before issue 14. */
          enabled: z.boolean().default(true),
          host: z.string().min(1).transform((h) => h.toLowerCase()).optional(),
        })
        .prefault({}),
      /** Second factors (src/auth/mfa/): users with any of these roles get no session without one (enrolment is forced). */
      mfa: z
        .strictObject({
          requiredRoles: list.prefault(['admin']),
        })
        .prefault({}),
      /**
       * Passkeys (WebAuthn). `signIn`: a passkey alone signs in (it is two factors itself: the
       * device and its PIN or biometric, user verification required), offered on the login page.
       * `rpId`: default the parent domain of the sign-in host (`example.com` for `crm.example.com`;
       * the sign-in host itself when its parent is a top-level name, as `localhost`).
       */
      passkeys: z
        .strictObject({
          signIn: bool.default(false),
          rpId: hostname.optional(),
          rpName: z.string().min(1).max(64).default('crm-gateway'),
        })
        .prefault({}),
      /** Sign-in with an external OpenID Provider (src/auth/oidc/config.ts); absent: off. */
      oidc: oidcSchema.optional(),
    })
    .prefault({}),
  secrets: z
    .strictObject({
      apiSecretKey: z.string().optional(),
      /** Previous JWT keys, `<secret>@<retire-after ISO time>` comma-separated: they verify until then. */
      apiSecretKeyPrevious: z.string().optional(),
      whatsappAppSecret: z.string().optional(),
      whatsappVerifyToken: z.string().optional(),
      /** The app secret before a rotation: its signatures are accepted until it is removed. */
      whatsappAppSecretPrevious: z.string().optional(),
      /** AES-256-GCM key of queued webhook payloads (message content is never at rest in clear). */
      whatsappQueueKey: z.string().regex(/^[0-9a-fA-F]{64}$/, 'use 32 bytes hex (64 characters): openssl rand -hex 32').optional(),
      /** The queue key before a rotation: still opens queued payloads (never seals) until they drain. */
      whatsappQueueKeyPrevious: z.string().regex(/^[0-9a-fA-F]{64}$/, 'use 32 bytes hex (64 characters): the WHATSAPP_QUEUE_KEY before the rotation').optional(),
    })
    .prefault({}),
  /** The signed identity assertion upstreams verify (src/auth/assertion/; README "Verifying who is calling"). */
  assertion: z
    .strictObject({
      /** The ES256 key file, shared by every instance; unset: `assertion-keys.json` in DATA_DIR, created at first start. */
      keyFile: z.string().min(1).optional(),
      /** The assertions' `iss`; unset: `https://<domain>` (with PUBLIC_HTTPS_PORT when not 443). */
      issuer: z.url({ protocol: /^https?$/, message: 'use an http(s) URL, e.g. https://example.com' }).optional(),
    })
    .prefault({}),
  /** The WhatsApp webhook's delivery to the CRM API (routes with `auth: whatsapp`). */
  whatsapp: z
    .strictObject({
      ackTimeout: duration.prefault(DEFAULTS.whatsappAckTimeout),
      retryMin: duration.prefault(DEFAULTS.whatsappRetryMin),
      retryMax: duration.prefault(DEFAULTS.whatsappRetryMax),
      maxQueued: z.number().int().positive().default(DEFAULTS.whatsappMaxQueued),
      /**
       * Answer Meta only once Redis confirms the payload is fsynced to its append-only file
       * (WAITAOF 1 0, Redis 7.2+; refused at startup on an older Redis). Off: acknowledged once
       * in Redis's memory, which `appendfsync everysec` puts on disk within about 1 s.
       */
      waitAof: z.boolean().default(false),
      /**
       * Meta's client certificate on webhook deliveries (src/tls/client-certs.ts): asked for
       * only on the webhook routes' hosts, which must be hosts of their own. `required`: a
       * delivery without one is refused; `optional`: one is checked when sent. Unset: off.
       */
      mtls: z.enum(['required', 'optional']).optional(),
      /** Meta's outbound CA (PEM, operator-provided): the only trust anchor for client certificates. */
      mtlsCaFile: z.string().min(1).optional(),
    })
    .prefault({}),
  stores: z
    .strictObject({
      redisUrl: z.string().regex(/^rediss?:\/\//, 'use redis:// or rediss://').optional(),
      redisPassword: z.string().optional(),
      /** Redis Sentinel: `host:port` list; the master named `redisSentinelName` (default mymaster) is asked of them. */
      redisSentinels: list.pipe(z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'use host:port'))).optional(),
      redisSentinelName: z.string().min(1).optional(),
      databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'use postgres:// or postgresql://').optional(),
      /** Embedded stores (users, revocations) without DATABASE_URL / REDIS_URL; files of mode 0600. */
      dataDir: z.string().default('data'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['error', 'warn', 'info', 'debug']).default(DEFAULTS.logLevel),
      dir: z.string().default(DEFAULTS.logDir),
      retentionDays: z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().int().min(1)).default(DEFAULTS.logRetentionDays),
      /** Key of the hash that stands in for phone numbers and other personal identifiers in logs. */
      hashKey: z.string().min(16, 'use at least 16 characters (openssl rand -hex 32)').optional(),
      /** true: answer 503 while log lines cannot be written; false: keep serving and alert. */
      failClosed: bool.default(false),
      maxBacklog: size.pipe(z.number().int().min(64 * 1024, 'at least 64kb')).prefault(DEFAULTS.logMaxBacklog),
      /** This gateway's name in shared audit tables (PostgreSQL); default the host name. */
      node: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ -').optional(),
    })
    .prefault({}),
  alerts: z
    .strictObject({
      /** JSON POST of every alert (with retries); unset: alerts go to the logs only. */
      webhookUrl: z.url({ protocol: /^https?$/, message: 'use an http(s) URL' }).optional(),
      /** The same alert (type and subject) is not raised again within this time. */
      cooldown: duration.prefault(DEFAULTS.alertCooldown),
      failedLogins: z
        .strictObject({
          window: duration.prefault(DEFAULTS.alertFailedLoginWindow),
          perUser: z.number().int().positive().default(DEFAULTS.alertFailedLoginsPerUser),
          perIp: z.number().int().positive().default(DEFAULTS.alertFailedLoginsPerIp),
        })
        .prefault({}),
      newIp: bool.default(true),
      suspicious: z
        .strictObject({
          window: duration.prefault(DEFAULTS.alertSuspiciousWindow),
          rateLimited: z.number().int().positive().default(DEFAULTS.alertRateLimitedPerIp),
          rejectedPaths: z.number().int().positive().default(DEFAULTS.alertRejectedPathsPerIp),
        })
        .prefault({}),
      upstreamDown: z
        .strictObject({ window: duration.prefault(DEFAULTS.alertUpstreamWindow), errors: z.number().int().positive().default(DEFAULTS.alertUpstreamErrors) })
        .prefault({}),
      resources: z
        .strictObject({
          interval: duration.prefault(DEFAULTS.alertResourceInterval),
          eventLoopLag: duration.prefault(DEFAULTS.alertEventLoopLag),
          maxRss: size.prefault(DEFAULTS.alertMaxRss),
          maxHeapRatio: z.number().gt(0).max(1).default(DEFAULTS.alertMaxHeapRatio),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Encrypted database backups (the `backup` commands); doctor checks these against the checklist. */
  backup: z
    .strictObject({
      enabled: bool.default(false),
      schedule: z
        .string()
        .default(DEFAULTS.backupSchedule)
        .refine((s) => {
          try {
            new Cron(s, { paused: true });
            return true;
          } catch {
            return false;
          }
        }, 'not a cron schedule (five fields, e.g. 0 2 * * *)'),
      retentionDays: z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().int().min(1)).default(DEFAULTS.backupRetentionDays),
      dir: z.string().default(DEFAULTS.backupDir),
      /** The encryption key's file (32 bytes hex, mode 0600): never in `.env`, never beside the backups. */
      keyFile: z.string().default(DEFAULTS.backupKeyFile),
      /** The CRM database to back up; unset: DATABASE_URL. */
      databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'use postgres:// or postgresql://').optional(),
      /** Remote copy of every verified backup (S3 or S3-compatible); off without a bucket. */
      s3: z
        .strictObject({
          bucket: z.string().min(1).optional(),
          /** Unset: AWS S3. Set (e.g. https://minio.internal:9000): path-style requests to that service. */
          endpoint: z.url({ protocol: /^https?$/, message: 'use an http(s) URL' }).optional(),
          region: z.string().min(1).default(DEFAULTS.backupS3Region),
          /** Key prefix inside the bucket, e.g. `crm/`. */
          prefix: z.string().regex(/^[A-Za-z0-9!_.*'()/-]*$/, 'letters, digits and !_.*\'()/- only').default(''),
          accessKeyId: z.string().min(1).optional(),
          secretAccessKey: z.string().min(1).optional(),
        })
        // Each problem sits on the setting that was given, so it names the variable that set it.
        .superRefine((s, ctx) => {
          const both = 'set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (the SDK then looks for a role)';
          if (s.accessKeyId && !s.secretAccessKey) ctx.addIssue({ code: 'custom', path: ['accessKeyId'], message: both });
          if (s.secretAccessKey && !s.accessKeyId) ctx.addIssue({ code: 'custom', path: ['secretAccessKey'], message: both });
          if (!s.bucket && s.endpoint) ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'an S3 endpoint without a bucket: set BACKUP_S3_BUCKET (or unset BACKUP_S3_ENDPOINT)' });
        })
        .prefault({}),
    })
    .prefault({}),
  /** The security overview on the admin listener (`/security`) and its sign-in. */
  admin: z
    .strictObject({
      /** Time zone the overview shows times in (IANA name); unset: the process's own (TZ), else UTC. */
      timeZone: z
        .string()
        .refine((tz) => {
          try {
            new Intl.DateTimeFormat('en', { timeZone: tz });
            return true;
          } catch {
            return false;
          }
        }, 'not a time zone name (e.g. Europe/Madrid, America/Bogota, UTC)')
        .optional(),
      /** Lifetime of a browser sign-in to the overview (absolute, not renewed by use). */
      sessionTtl: duration.prefault('30m').pipe(z.number().min(60_000, 'at least 1m').max(12 * 3_600_000, 'at most 12h')),
      /**
       * Host names the overview answers to besides loopback (127.0.0.1, [::1], localhost): any
       * other Host is refused, so a DNS-rebinding page cannot reach it with the admin's cookie.
       */
      hosts: list.prefault([]),
    })
    .prefault({}),
  /** Blocks (`crm-gateway block …`) and automatic containment; README "Incident response". */
  containment: z
    .strictObject({
      /** The longest block the CLI or a rule may set. */
      maxDuration: duration.prefault('90d'),
      /** Networks never blocked automatically (the administrators' own); TRUSTED_PROXIES never are either. */
      neverBlock: cidrList.prefault([]),
      /** Alerts turned into blocks (opt-in; none by default). */
      rules: z
        .array(
          z
            .strictObject({
              on: z.enum(['failed_logins_ip', 'failed_logins_user', 'account_locked', 'new_ip_for_user', 'suspicious_rate_limited', 'suspicious_rejected_paths']),
              block: z.enum(['ip', 'user']),
              for: duration.pipe(z.number().min(1_000, 'at least 1s')),
              /** Blocks this rule may make in any minute; alerts past it are logged, not acted on. */
              maxPerMinute: z.number().int().min(1).max(1_000).default(10),
            })
            .superRefine((r, ctx) => {
              const why = unsafeContainment(r.on, r.block);
              if (why) ctx.addIssue({ code: 'custom', path: ['block'], message: why });
            }),
        )
        .default([]),
    })
    .superRefine((c, ctx) => {
      c.rules.forEach((r, i) => {
        if (r.for > c.maxDuration) ctx.addIssue({ code: 'custom', path: ['rules', i, 'for'], message: 'longer than containment.maxDuration' });
      });
    })
    .prefault({}),
  /**
   * Forward-auth mode (src/auth/forward-auth/): an endpoint at `host` + `path` that an edge proxy
   * (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth) asks about each request it
   * serves. Its X-Forwarded-* / X-Original-* headers are believed only from `edges` (default:
   * TRUSTED_PROXIES); any other peer is refused.
   */
  forwardAuth: z
    .strictObject({
      host: hostname,
      path: z.string().regex(/^\/auth\/[a-z0-9/_-]+$/, 'a path under /auth/').default('/auth/verify'),
      edges: cidrList.prefault([]),
    })
    .optional(),
  /** The gateway's own pages (sign-in, sign-out, errors). */
  ui: z
    .strictObject({
      /** Their language when the browser's Accept-Language names neither es nor en. */
      defaultLanguage: z.enum(LANGUAGES).default(DEFAULT_LANGUAGE),
    })
    .prefault({}),
  routes: z
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
    }),
}).superRefine((c, ctx) => {
  // Embedded stores count per process: N workers without Redis would multiply every limit by N.
  if (c.server.workers > 1 && !c.stores.redisUrl) ctx.addIssue({ code: 'custom', path: ['server', 'workers'], message: 'more than one worker needs REDIS_URL (shared limits and state)' });
  // Fail closed: with no edge named, no forwarded header could ever be believed.
  if (c.forwardAuth && c.forwardAuth.edges.length === 0 && c.trustedProxies.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['forwardAuth', 'host'], message: 'forward-auth needs the edge proxies\' addresses: forwardAuth.edges or TRUSTED_PROXIES' });
  }
  // The sign-in host hands out sessions: it must be a host whose routes hold them.
  const ssoHost = c.auth.sso.host;
  if (ssoHost && !c.routes.some((r) => r.host?.toLowerCase() === ssoHost && (r.auth === 'session' || r.auth === 'jwt-or-session'))) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'sso', 'host'], message: `${ssoHost} is not the host of a session or jwt-or-session route` });
  }
  // Sign-in with a provider ends on a session host's callback (src/auth/oidc/endpoints.ts).
  const sessionHosts = c.routes.filter((r) => r.host && (r.auth === 'session' || r.auth === 'jwt-or-session')).map((r) => r.host);
  if (c.auth.oidc && sessionHosts.length === 0) ctx.addIssue({ code: 'custom', path: ['auth', 'oidc', ...givenSetting(c.auth.oidc)], message: 'sign-in with an identity provider needs a route with a host and auth: session (or jwt-or-session)' });
  if (c.auth.oidc?.redirectUri && URL.canParse(c.auth.oidc.redirectUri) && sessionHosts.length > 0 && !sessionHosts.includes(new URL(c.auth.oidc.redirectUri).hostname)) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'oidc', 'redirectUri'], message: `must be on a session route's host (${sessionHosts.join(', ')})` });
  }
  if (c.stores.redisSentinels?.length && !c.stores.redisUrl) ctx.addIssue({ code: 'custom', path: ['stores', 'redisSentinels'], message: 'Sentinel needs REDIS_URL too (it gives TLS, password and database)' });
  // HTTP-01 is answered by the redirect listener; with FORCE_HTTPS=false that listener serves the routes instead.
  if (c.tls.acme?.challenge === 'http-01' && !c.forceHttps) ctx.addIssue({ code: 'custom', path: ['tls', 'acme', 'challenge'], message: 'ACME http-01 is answered on the plain-HTTP redirect listener, which FORCE_HTTPS=false turns off; set FORCE_HTTPS=true or ACME_CHALLENGE=tls-alpn-01' });
  // Each problem sits on the setting that was given, so it names the variable that set it.
  if (c.whatsapp.mtls && !c.whatsapp.mtlsCaFile) ctx.addIssue({ code: 'custom', path: ['whatsapp', 'mtls'], message: 'WHATSAPP_MTLS needs WHATSAPP_MTLS_CA_FILE (Meta\'s outbound CA certificate)' });
  if (c.whatsapp.mtlsCaFile && !c.whatsapp.mtls) ctx.addIssue({ code: 'custom', path: ['whatsapp', 'mtlsCaFile'], message: 'WHATSAPP_MTLS_CA_FILE is set but WHATSAPP_MTLS is not (required or optional)' });
  // A client certificate is asked for per TLS server name; on a host other routes share, every
  // browser and API client of those routes would be asked too.
  if (c.whatsapp.mtls) {
    c.routes.forEach((r, i) => {
      if (r.auth !== 'whatsapp') return;
      if (!r.host) ctx.addIssue({ code: 'custom', path: ['routes', i, 'host'], message: 'WHATSAPP_MTLS needs the webhook route on a host of its own (e.g. host: whatsapp.${GATEWAY_DOMAIN})' });
      else if (c.routes.some((o) => o.auth !== 'whatsapp' && o.host === r.host)) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'host'], message: `WHATSAPP_MTLS needs the webhook route on a host of its own: other routes answer on ${r.host}, and their clients would be asked for a certificate` });
      }
    });
  }
  // A route whose whole body could never fit in the budget would refuse every such body with 503.
  c.routes.forEach((r, i) => {
    if ((r.openapi || r.auth === 'whatsapp') && r.maxBody > c.server.maxBufferedBodies) {
      ctx.addIssue({ code: 'custom', path: ['routes', i, 'maxBody'], message: `larger than server.maxBufferedBodies (${c.server.maxBufferedBodies} bytes): this route reads bodies whole, so one of that size could never be read; raise server.maxBufferedBodies or lower maxBody` });
    }
  });
});

export type GatewayConfig = z.output<typeof gatewaySchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type CorsConfig = NonNullable<RouteConfig['cors']>;
export type AlertsConfig = GatewayConfig['alerts'];
export type LogConfig = GatewayConfig['log'];
export type ContainmentConfig = GatewayConfig['containment'];
export type AcmeConfig = NonNullable<GatewayConfig['tls']['acme']>;
