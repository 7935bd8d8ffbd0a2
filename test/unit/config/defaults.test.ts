import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS } from '../../../src/config/defaults.js';
import { INTERPOLATION_DEFAULTS } from '../../../src/config/env.js';
import { parseConfig } from '../../../src/config/load.js';
import { DEFAULTS as SCHEMA_DEFAULTS, DEFAULT_CORS_EXPOSE, type GatewayConfig } from '../../../src/config/schema.js';
import { parseDuration, parseSize } from '../../../src/config/units.js';
import { DEFAULT_MAX_TOKEN_TTL_MS } from '../../../src/secrets/keyring.js';

/** Only what has no default of its own, plus the optional parts whose fields have defaults. */
const MINIMAL = `
forwardAuth: { host: auth.example.com, edges: [10.0.0.0/8] }
containment: { rules: [{ on: failed_logins_ip, block: ip, for: 1h }] }
routes:
  - name: r
    host: api.\${GATEWAY_DOMAIN}
    upstream: http://127.0.0.1:8000
    auth: jwt
    rateLimit: { window: 1m, max: 1 }
    cors: { origins: ["\${CORS_ORIGINS}"] }
`;

type Kind = 'as-is' | 'duration' | 'size';
const route = (c: GatewayConfig) => c.routes[0];

/** Where each default lands in a parsed config, and in which unit DEFAULTS writes it. */
const WHERE: Record<keyof typeof DEFAULTS, [(c: GatewayConfig) => unknown, Kind]> = {
  domain: [(c) => c.domain, 'as-is'],
  httpsPort: [(c) => c.listen.httpsPort, 'as-is'],
  httpPort: [(c) => c.listen.httpPort, 'as-is'],
  adminPort: [(c) => c.listen.adminPort, 'as-is'],
  listenAddress: [(c) => c.listen.address, 'as-is'],
  adminAddress: [(c) => c.listen.adminAddress, 'as-is'],
  certFile: [(c) => c.tls.certFile, 'as-is'],
  keyFile: [(c) => c.tls.keyFile, 'as-is'],
  hstsMaxAge: [(c) => c.tls.hstsMaxAge, 'as-is'],
  corsOrigins: [(c) => c.corsOrigins, 'as-is'],
  corsMethods: [(c) => route(c)?.cors?.methods, 'as-is'],
  corsHeaders: [(c) => route(c)?.cors?.headers, 'as-is'],
  corsExposeHeaders: [(c) => route(c)?.cors?.exposeHeaders, 'as-is'],
  corsMaxAge: [(c) => route(c)?.cors?.maxAge, 'duration'],
  maxHeaderSize: [(c) => c.server.maxHeaderSize, 'as-is'],
  maxUrlLength: [(c) => c.server.maxUrlLength, 'as-is'],
  headersTimeout: [(c) => c.server.headersTimeout, 'duration'],
  requestTimeout: [(c) => c.server.requestTimeout, 'duration'],
  keepAliveTimeout: [(c) => c.server.keepAliveTimeout, 'duration'],
  shutdownTimeout: [(c) => c.server.shutdownTimeout, 'duration'],
  sendTimeout: [(c) => c.server.sendTimeout, 'duration'],
  routeTimeout: [(c) => route(c)?.timeout, 'duration'],
  maxBody: [(c) => route(c)?.maxBody, 'size'],
  maxBufferedBodies: [(c) => c.server.maxBufferedBodies, 'size'],
  bodyReadTimeout: [(c) => c.server.bodyReadTimeout, 'duration'],
  authIssuer: [(c) => c.auth.issuer, 'as-is'],
  authAudience: [(c) => c.auth.audience, 'as-is'],
  authMaxTokenTtl: [(c) => c.auth.maxTokenTtl, 'duration'],
  authSessionTtl: [(c) => c.auth.sessionTtl, 'duration'],
  authRefreshTtl: [(c) => c.auth.refreshTtl, 'duration'],
  authRefreshReuseGrace: [(c) => c.auth.refreshReuseGrace, 'duration'],
  authClockSkew: [(c) => c.auth.clockSkew, 'duration'],
  mfaRequiredRoles: [(c) => c.auth.mfa.requiredRoles, 'as-is'],
  passkeyRpName: [(c) => c.auth.passkeys.rpName, 'as-is'],
  dataDir: [(c) => c.stores.dataDir, 'as-is'],
  logLevel: [(c) => c.log.level, 'as-is'],
  logDir: [(c) => c.log.dir, 'as-is'],
  logRetentionDays: [(c) => c.log.retentionDays, 'as-is'],
  logMaxBacklog: [(c) => c.log.maxBacklog, 'size'],
  alertCooldown: [(c) => c.alerts.cooldown, 'duration'],
  alertFailedLoginWindow: [(c) => c.alerts.failedLogins.window, 'duration'],
  alertFailedLoginsPerUser: [(c) => c.alerts.failedLogins.perUser, 'as-is'],
  alertFailedLoginsPerIp: [(c) => c.alerts.failedLogins.perIp, 'as-is'],
  alertSuspiciousWindow: [(c) => c.alerts.suspicious.window, 'duration'],
  alertRateLimitedPerIp: [(c) => c.alerts.suspicious.rateLimited, 'as-is'],
  alertRejectedPathsPerIp: [(c) => c.alerts.suspicious.rejectedPaths, 'as-is'],
  alertUpstreamWindow: [(c) => c.alerts.upstreamDown.window, 'duration'],
  alertUpstreamErrors: [(c) => c.alerts.upstreamDown.errors, 'as-is'],
  alertResourceInterval: [(c) => c.alerts.resources.interval, 'duration'],
  alertEventLoopLag: [(c) => c.alerts.resources.eventLoopLag, 'duration'],
  alertMaxRss: [(c) => c.alerts.resources.maxRss, 'size'],
  alertMaxHeapRatio: [(c) => c.alerts.resources.maxHeapRatio, 'as-is'],
  backupSchedule: [(c) => c.backup.schedule, 'as-is'],
  backupRetentionDays: [(c) => c.backup.retentionDays, 'as-is'],
  backupDir: [(c) => c.backup.dir, 'as-is'],
  backupKeyFile: [(c) => c.backup.keyFile, 'as-is'],
  backupS3Region: [(c) => c.backup.s3.region, 'as-is'],
  adminSessionTtl: [(c) => c.admin.sessionTtl, 'duration'],
  containmentMaxDuration: [(c) => c.containment.maxDuration, 'duration'],
  containmentRuleMaxPerMinute: [(c) => c.containment.rules[0]?.maxPerMinute, 'as-is'],
  forwardAuthPath: [(c) => c.forwardAuth?.path, 'as-is'],
  rateLimitIpv6Prefix: [(c) => route(c)?.rateLimit?.ipv6Prefix, 'as-is'],
  rateLimitFailMode: [(c) => route(c)?.rateLimit?.failMode, 'as-is'],
  workers: [(c) => c.server.workers, 'as-is'],
  whatsappAckTimeout: [(c) => c.whatsapp.ackTimeout, 'duration'],
  whatsappRetryMin: [(c) => c.whatsapp.retryMin, 'duration'],
  whatsappRetryMax: [(c) => c.whatsapp.retryMax, 'duration'],
  whatsappMaxQueued: [(c) => c.whatsapp.maxQueued, 'as-is'],
};

function inConfigUnits(value: unknown, kind: Kind): unknown {
  if (kind === 'duration') return parseDuration(value as string);
  if (kind === 'size') return parseSize(value as string);
  return value;
}

describe('config/defaults.ts is the one source of the defaults', () => {
  const cfg = parseConfig(MINIMAL, {}, 'minimal.yaml');

  test('a config that sets nothing carries every DEFAULTS value, each where WHERE says', () => {
    for (const [name, [at, kind]] of Object.entries(WHERE)) {
      const given = DEFAULTS[name as keyof typeof DEFAULTS];
      assert.deepEqual(at(cfg), inConfigUnits(given, kind), name);
    }
  });

  test('schema.ts re-exports the same objects (importers of schema.js see one DEFAULTS)', () => {
    assert.equal(SCHEMA_DEFAULTS, DEFAULTS);
    assert.deepEqual(DEFAULT_CORS_EXPOSE, DEFAULTS.corsExposeHeaders);
  });

  test('${GATEWAY_DOMAIN} and ${CORS_ORIGINS} fall back to the same defaults as the settings', () => {
    assert.equal(INTERPOLATION_DEFAULTS.GATEWAY_DOMAIN, DEFAULTS.domain);
    assert.deepEqual(route(cfg)?.cors?.origins, [...DEFAULTS.corsOrigins]);
    assert.equal(route(cfg)?.host, `api.${DEFAULTS.domain}`);
  });

  test('the fallbacks used without a config are the schema defaults', () => {
    assert.equal(DEFAULT_MAX_TOKEN_TTL_MS, cfg.auth.maxTokenTtl);
  });
});
