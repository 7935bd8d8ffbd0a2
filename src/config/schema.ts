import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { IpSet } from '../net/ip.js';

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
  routeTimeout: '60s',
  maxBody: '1mb',
  logLevel: 'info',
  logDir: 'logs',
  logRetentionDays: 30,
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

const hostname = z
  .string()
  .transform((h) => h.trim().toLowerCase().replace(/\.$/, ''))
  .refine((h) => /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/.test(h), {
    message: 'not a valid host name',
  });

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
      .strictObject({ window: duration, max: z.number().int().positive(), by: z.enum(['ip', 'user']).default('ip') })
      .optional(),
    cors: z
      .strictObject({
        origins: list,
        credentials: bool.default(true),
        methods: list.prefault(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
        headers: list.prefault(['Authorization', 'Content-Type', 'X-Requested-With', 'X-Request-Id']),
        exposeHeaders: list.prefault(['X-Request-Id']),
        maxAge: duration.prefault(600_000),
      })
      .optional(),
    ipAllowlist: cidrList.prefault([]),
    timeout: duration.prefault(DEFAULTS.routeTimeout),
    maxBody: size.prefault(DEFAULTS.maxBody),
    allowEncodedSlashes: bool.default(false),
    websocket: bool.default(true),
    requestHeaders: headerEdits.optional(),
    responseHeaders: headerEdits.optional(),
    preserveHost: bool.default(false),
  })
  .superRefine((r, ctx) => {
    if (!r.host && !r.path) ctx.addIssue({ code: 'custom', message: 'a route needs a host, a path, or both' });
    if (r.stripPrefix && !r.path) ctx.addIssue({ code: 'custom', path: ['stripPrefix'], message: 'stripPrefix needs a path' });
    if (r.auth === 'none' && r.roles.length > 0) ctx.addIssue({ code: 'custom', path: ['roles'], message: 'roles need an auth mode other than none' });
    if (r.rateLimit?.by === 'user' && r.auth === 'none') ctx.addIssue({ code: 'custom', path: ['rateLimit', 'by'], message: 'by: user needs an authenticated route' });
  });

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
    })
    .prefault({}),
  forceHttps: bool.default(true),
  trustedProxies: cidrList.prefault([]),
  corsOrigins: list.prefault([...DEFAULTS.corsOrigins]),
  server: z
    .strictObject({
      maxHeaderSize: z.number().int().min(1024).max(1024 * 1024).default(DEFAULTS.maxHeaderSize),
      maxUrlLength: z.number().int().min(256).default(DEFAULTS.maxUrlLength),
      headersTimeout: duration.prefault(DEFAULTS.headersTimeout),
      requestTimeout: duration.prefault(DEFAULTS.requestTimeout),
      keepAliveTimeout: duration.prefault(DEFAULTS.keepAliveTimeout),
      shutdownTimeout: duration.prefault(DEFAULTS.shutdownTimeout),
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
      clockSkew: duration.prefault('30s'),
    })
    .prefault({}),
  secrets: z
    .strictObject({
      apiSecretKey: z.string().optional(),
      /** Previous JWT keys, `<secret>@<retire-after ISO time>` comma-separated: they verify until then. */
      apiSecretKeyPrevious: z.string().optional(),
      whatsappAppSecret: z.string().optional(),
      whatsappVerifyToken: z.string().optional(),
    })
    .prefault({}),
  stores: z
    .strictObject({
      redisUrl: z.string().regex(/^rediss?:\/\//, 'use redis:// or rediss://').optional(),
      redisPassword: z.string().optional(),
      databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'use postgres:// or postgresql://').optional(),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['error', 'warn', 'info', 'debug']).default(DEFAULTS.logLevel),
      dir: z.string().default(DEFAULTS.logDir),
      retentionDays: z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().int().min(1)).default(DEFAULTS.logRetentionDays),
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
});

export type GatewayConfig = z.output<typeof gatewaySchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type CorsConfig = NonNullable<RouteConfig['cors']>;
