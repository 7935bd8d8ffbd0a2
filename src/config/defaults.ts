/**
 * Every default of the config, named once. The schema (src/config/schema/) reads them, and so
 * does any code that must guess a setting without a config (doctor, setup, the CLI's fallbacks),
 * so the two never drift apart. Durations and sizes are written as the config writes them.
 * Booleans and enums that default to their first or safest value stay beside their field.
 */
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
  /** CORS_ORIGINS, which routes read through `${CORS_ORIGINS}`: local pages, for development. */
  corsOrigins: ['localhost', '127.0.0.1'],
  corsMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
  corsHeaders: ['Authorization', 'Content-Type', 'X-Requested-With', 'X-Request-Id'],
  /**
   * Response headers browser code may read cross-origin: the request id for support, and the
   * rate-limit headers (draft-ietf-httpapi-ratelimit-headers, Retry-After) to back off.
   */
  corsExposeHeaders: ['X-Request-Id', 'RateLimit', 'RateLimit-Policy', 'Retry-After'],
  corsMaxAge: '10m',
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
  /** Token issuer and audience: required claims, checked on every token. */
  authIssuer: 'crm-gateway',
  authAudience: 'crm',
  /** Longest lifetime a token may have (JWT_MAX_TTL); a retired JWT key must outlive it. */
  authMaxTokenTtl: '24h',
  /** Browser access-token lifetime (refresh tokens renew it). */
  authSessionTtl: '15m',
  authRefreshTtl: '12h',
  authRefreshReuseGrace: '10s',
  authClockSkew: '30s',
  /** Roles that cannot have a session without a second factor. */
  mfaRequiredRoles: ['admin'],
  passkeyRpName: 'crm-gateway',
  /** Embedded stores (users, revocations, the assertion keys) without DATABASE_URL / REDIS_URL. */
  dataDir: 'data',
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
  /** Lifetime of a browser sign-in to the security overview (absolute, not renewed by use). */
  adminSessionTtl: '30m',
  /** The longest block the CLI or a containment rule may set. */
  containmentMaxDuration: '90d',
  /** Blocks one containment rule may make in any minute. */
  containmentRuleMaxPerMinute: 10,
  forwardAuthPath: '/auth/verify',
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

/** DEFAULTS.corsExposeHeaders under the name importers know. */
export const DEFAULT_CORS_EXPOSE: string[] = [...DEFAULTS.corsExposeHeaders];
