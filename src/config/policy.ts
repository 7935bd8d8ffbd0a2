import type { GatewayConfig } from './schema.js';
import { coversEverything, IpSet, normalizeIp } from '../net/ip.js';
import type { CertificateInfo } from '../tls/certificates.js';

export interface PolicyFinding {
  /** Stable id, e.g. `force-https-off`. */
  id: string;
  message: string;
}

/** What the certificate looked like at startup; undefined when there is none yet. */
export type CertificateFacts = CertificateInfo | undefined;

/** Shortest secret (in characters) accepted in production; the architecture asks 32 bytes. */
const MIN_SECRET_CHARS = 32;

const LOOPBACK = new IpSet(['127.0.0.0/8', '::1/128']);

/** The admin listener has no authentication of its own for /metrics and /readyz: loopback only. */
function isLoopback(address: string): boolean {
  if (address.trim().toLowerCase() === 'localhost') return true;
  const ip = normalizeIp(address);
  return ip !== undefined && LOOPBACK.has(ip);
}

/**
 * What production refuses in a certificate and its key. Checked at startup and again on every
 * reload: a renewal must not bring in what startup would have refused.
 */
export function certificateFindings(cfg: GatewayConfig, cert: CertificateFacts): PolicyFinding[] {
  // With ACME the gateway obtains it itself once started (src/tls/acme/): a fresh machine has none yet.
  if (cert === undefined) return cfg.tls.acme ? [] : [{ id: 'certificate-missing', message: `no TLS certificate at ${cfg.tls.certFile}` }];
  const out: PolicyFinding[] = [];
  if (cert.selfSigned) out.push({ id: 'certificate-self-signed', message: `the TLS certificate ${cfg.tls.certFile} is self-signed` });
  // Same id as self-signed (doctor and the docs know it): a CA only this machine trusts is no better for clients.
  else if (cert.developmentCa) out.push({ id: 'certificate-self-signed', message: `the TLS certificate ${cfg.tls.certFile} is issued by the crm-gateway development CA: trusted only where someone imported that CA, no better than self-signed for clients` });
  if (cert.validTo.getTime() < Date.now()) out.push({ id: 'certificate-expired', message: `the TLS certificate expired on ${cert.validTo.toISOString()}` });
  if ((cert.keyMode & 0o077) !== 0) out.push({ id: 'key-mode', message: `the TLS key ${cfg.tls.keyFile} is readable by others (mode ${cert.keyMode.toString(8)}; want 600)` });
  return out;
}

/**
 * Settings that are allowed but unsafe. In production each one refuses startup; in
 * development each one is a loud WARNING. Every finding is returned, not just the first.
 */
export function insecureSettings(cfg: GatewayConfig, cert: CertificateFacts): PolicyFinding[] {
  const out: PolicyFinding[] = [];
  if (!cfg.forceHttps) out.push({ id: 'force-https-off', message: 'FORCE_HTTPS=false: plain HTTP is served instead of redirected to HTTPS' });
  out.push(...certificateFindings(cfg, cert));
  if (cfg.corsOrigins.includes('*')) out.push({ id: 'cors-wildcard', message: 'CORS_ORIGINS contains *' });
  for (const r of cfg.routes) {
    if (r.cors?.origins.includes('*')) out.push({ id: 'cors-wildcard', message: `route ${r.name} allows CORS from any origin (*)` });
  }
  if (!isLoopback(cfg.listen.adminAddress)) {
    out.push({ id: 'admin-not-loopback', message: `the admin listener (metrics, readiness, security overview) binds to ${cfg.listen.adminAddress}, not loopback` });
  }
  if (coversEverything(cfg.trustedProxies)) out.push({ id: 'trusted-proxies-everything', message: 'TRUSTED_PROXIES covers every address: any client can forge X-Forwarded-For' });
  if (!cfg.log.hashKey) out.push({ id: 'log-hash-key-missing', message: 'LOG_HASH_KEY is not set: phone numbers in the logs would be hashed with a key that changes at every start' });

  const needs = new Map<string, { value: string | undefined; routes: string[] }>();
  const need = (env: string, value: string | undefined, route: string): void => {
    const n = needs.get(env) ?? { value, routes: [] };
    n.routes.push(route);
    needs.set(env, n);
  };
  for (const r of cfg.routes) {
    if (r.auth === 'jwt' || r.auth === 'session' || r.auth === 'jwt-or-session') need('API_SECRET_KEY', cfg.secrets.apiSecretKey, r.name);
    if (r.auth === 'whatsapp') {
      need('WHATSAPP_APP_SECRET', cfg.secrets.whatsappAppSecret, r.name);
      need('WHATSAPP_VERIFY_TOKEN', cfg.secrets.whatsappVerifyToken, r.name);
      // Without both, every webhook POST answers 503: nothing can be stored, so nothing is acknowledged.
      need('WHATSAPP_QUEUE_KEY', cfg.secrets.whatsappQueueKey, r.name);
      if (!cfg.stores.redisUrl) out.push({ id: 'whatsapp-without-redis', message: `REDIS_URL is not set: route ${r.name} cannot queue webhook payloads and answers every one with 503` });
    }
  }
  for (const [env, { value, routes }] of needs) {
    if (!value) out.push({ id: 'secret-missing', message: `${env} is not set; routes ${routes.join(', ')} need it` });
    else if (env !== 'WHATSAPP_VERIFY_TOKEN' && value.length < MIN_SECRET_CHARS) {
      out.push({ id: 'secret-weak', message: `${env} is shorter than ${MIN_SECRET_CHARS} characters` });
    }
  }
  return out;
}
