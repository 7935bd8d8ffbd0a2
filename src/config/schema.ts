/**
 * The whole config: the sections (one file each under ./schema/), the routes, and the checks
 * that need more than one section. Importers use this module only; its names are the contract.
 */
import { z } from 'zod';
import { givenSetting } from '../auth/oidc/config.js';
import { DEFAULTS } from './defaults.js';
import { bool, cidrList, corsOrigins, hostname } from './schema/fields.js';
import { routeSchema, routesSchema } from './schema/route.js';
import { listenSchema } from './schema/listen.js';
import { tlsSchema } from './schema/tls.js';
import { serverSchema } from './schema/server.js';
import { assertionSchema, authSchema } from './schema/auth.js';
import { secretsSchema } from './schema/secrets.js';
import { whatsappSchema } from './schema/whatsapp.js';
import { storesSchema } from './schema/stores.js';
import { logSchema } from './schema/log.js';
import { alertsSchema } from './schema/alerts.js';
import { backupSchema } from './schema/backup.js';
import { adminSchema } from './schema/admin.js';
import { containmentSchema } from './schema/containment.js';
import { forwardAuthSchema } from './schema/forward-auth.js';
import { uiSchema } from './schema/ui.js';

export { DEFAULTS, DEFAULT_CORS_EXPOSE } from './defaults.js';
export { AUTH_MODES, routeSchema, type AuthMode } from './schema/route.js';

export const gatewaySchema = z.strictObject({
  env: z.enum(['development', 'production']).default('development'),
  domain: hostname.default(DEFAULTS.domain),
  listen: listenSchema,
  tls: tlsSchema,
  forceHttps: bool.default(true),
  trustedProxies: cidrList.prefault([]),
  /**
   * CORS_ORIGINS itself. Routes take it through `cors.origins: ["${CORS_ORIGINS}"]`; the value is
   * kept here too so the startup policy refuses `*` in it even before a route reads it
   * (src/config/policy.ts), and doctor names the variable to fix.
   */
  corsOrigins: corsOrigins.prefault([...DEFAULTS.corsOrigins]),
  server: serverSchema,
  auth: authSchema,
  secrets: secretsSchema,
  assertion: assertionSchema,
  whatsapp: whatsappSchema,
  stores: storesSchema,
  log: logSchema,
  alerts: alertsSchema,
  backup: backupSchema,
  admin: adminSchema,
  containment: containmentSchema,
  forwardAuth: forwardAuthSchema.optional(),
  ui: uiSchema,
  routes: routesSchema,
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
export type AlertsConfig = GatewayConfig['alerts'];
export type ContainmentConfig = GatewayConfig['containment'];
export type AcmeConfig = NonNullable<GatewayConfig['tls']['acme']>;
