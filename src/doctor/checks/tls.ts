import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../../config/defaults.js';
import { routeHosts } from '../../routing/route-hosts.js';
import { tlsPolicy } from '../../tls/options.js';
import { clientCertHosts, readClientCa } from '../../tls/client-certs.js';
import { findingResults } from './policy.js';
import { acmeFixStatus, acmeReplaces, acmeStateLine } from './acme-disk.js';
import { pass, prodFail, type Check, type CheckResult } from '../types.js';

/** Renew before this: certificate tools renew at 30 days, so 14 means renewal is failing. */
export const CERT_EXPIRY_WARNING_DAYS = 14;
/** HSTS shorter than half a year protects little (and is below preload requirements). */
export const MIN_HSTS_SECONDS = 15_552_000;
const MIN_RSA_BITS = 2048;
const DAY_MS = 86_400_000;
const OLD_TLS = /\b(SSLv2|SSLv3|TLSv1|TLSv1\.1)\b(?!\.)/;

function keyStrength(x509: X509Certificate): string | undefined {
  const d = x509.publicKey.asymmetricKeyDetails;
  if (x509.publicKey.asymmetricKeyType === 'rsa' && (d?.modulusLength ?? 0) < MIN_RSA_BITS) return `RSA key of ${d?.modulusLength} bits (want ${MIN_RSA_BITS} or more)`;
  return undefined;
}

/** Loads, matches its key, is valid now, not self-signed (production), covers the hosts, not about to expire. */
export const certificateCheck: Check = (ctx) => {
  if (!ctx.config) return [];
  const replaced = acmeReplaces(ctx);
  if (replaced) {
    return [{ id: 'certificate', status: acmeFixStatus(ctx), message: `${replaced}: with ACME on, the gateway starts on a placeholder and ACME replaces it at once`, fix: `start the gateway and watch for acme.certificate_issued; ${acmeStateLine(ctx)} (see the acme check)` }];
  }
  if (ctx.certificate?.error) return [{ id: 'certificate', status: 'FAIL', message: ctx.certificate.error, fix: `check TLS_CERT_FILE (${ctx.config.tls.certFile}) and TLS_KEY_FILE (${ctx.config.tls.keyFile}) name a matching PEM pair` }];
  const out: CheckResult[] = findingResults(ctx, ['certificate-missing', 'certificate-self-signed', 'certificate-expired'], 'certificate');
  const pair = ctx.certificate?.pair;
  if (!pair) return out;
  const x509 = new X509Certificate(pair.cert);
  const info = pair.info;
  if (info.validFrom.getTime() > ctx.now.getTime()) out.push({ id: 'certificate', status: 'FAIL', message: `the certificate is not valid before ${info.validFrom.toISOString()}`, fix: 'check the clock, or the certificate you installed' });
  const daysLeft = Math.floor((info.validTo.getTime() - ctx.now.getTime()) / DAY_MS);
  if (daysLeft >= 0 && daysLeft < CERT_EXPIRY_WARNING_DAYS) {
    out.push({ id: 'certificate', status: prodFail(ctx), message: `the certificate expires in ${daysLeft} days (${info.validTo.toISOString()})`, fix: ctx.config.tls.acme ? `ACME renews at two thirds of the lifetime, so it is not renewing: ${acmeStateLine(ctx)} (see the acme check and acme.order_failed in the security log)` : 'renew it now and check why automatic renewal did not (certbot renew --dry-run)' });
  }
  // The hosts the routes answer on: the certificate must cover each, or browsers refuse.
  const uncovered = [...routeHosts(ctx.config.routes)].filter((h) => x509.checkHost(h) === undefined);
  if (uncovered.length > 0) {
    // With ACME the gateway orders one for every host at start; it serves this one for the hosts it covers meanwhile.
    if (ctx.config.tls.acme) out.push({ id: 'certificate', status: acmeFixStatus(ctx), message: `the certificate does not cover ${uncovered.join(', ')}: ACME orders one covering every route host when the gateway starts`, fix: `start the gateway and watch for acme.certificate_issued; ${acmeStateLine(ctx)} (see the acme check)` });
    else out.push({ id: 'certificate', status: prodFail(ctx), message: `the certificate does not cover ${uncovered.join(', ')}`, fix: 'issue it for every route host (or *.<domain>)' });
  }
  const weak = keyStrength(x509);
  if (weak) out.push({ id: 'certificate', status: 'FAIL', message: `the certificate has a ${weak}`, fix: 'reissue with an ECDSA P-256 or RSA 2048+ key' });
  return out.length > 0 ? out : [pass('certificate', `${info.subject.replace(/\n/g, ', ')}; valid until ${info.validTo.toISOString()} (${daysLeft} days); issuer ${info.issuer.replace(/\n/g, ', ')}`)];
};

export const certificateKeyModeCheck: Check = (ctx) => {
  const pair = ctx.certificate?.pair;
  if (!pair) return [];
  const out = findingResults(ctx, ['key-mode'], 'certificate-key-mode');
  return out.length > 0 ? out : [pass('certificate-key-mode', `TLS key is mode ${pair.info.keyMode.toString(8)}`)];
};

/** The gateway's own floor, and any nginx edge config shipped beside it. */
export const tlsMinVersionCheck: Check = (ctx) => {
  const min = tlsPolicy().minVersion;
  const out: CheckResult[] = [];
  if (min !== 'TLSv1.2' && min !== 'TLSv1.3') out.push({ id: 'tls-min-version', status: 'FAIL', message: `the gateway accepts ${min}`, fix: 'minVersion TLSv1.2 in src/tls/options.ts' });
  const nginxDir = ctx.at('nginx');
  if (existsSync(nginxDir)) {
    for (const file of readdirSync(nginxDir).filter((f) => f.endsWith('.conf'))) {
      const lines = readFileSync(join(nginxDir, file), 'utf8').split('\n');
      lines.forEach((line, i) => {
        const directive = line.replace(/#.*/, '').trim();
        if (directive.startsWith('ssl_protocols') && OLD_TLS.test(directive)) {
          out.push({ id: 'tls-min-version', status: 'FAIL', message: `nginx/${file}:${i + 1} offers ${directive}`, fix: 'ssl_protocols TLSv1.2 TLSv1.3;' });
        }
      });
    }
  }
  return out.length > 0 ? out : [pass('tls-min-version', `gateway minimum ${min}${existsSync(nginxDir) ? '; nginx configs no lower' : ''}`)];
};

export const hstsCheck: Check = (ctx) => {
  if (!ctx.config) return [];
  const { hstsMaxAge, hstsIncludeSubDomains } = ctx.config.tls;
  if (hstsMaxAge <= 0) return [{ id: 'hsts', status: prodFail(ctx), message: 'HSTS is off (tls.hstsMaxAge: 0)', fix: `tls.hstsMaxAge: ${DEFAULTS.hstsMaxAge}` }];
  const out: CheckResult[] = [];
  if (hstsMaxAge < MIN_HSTS_SECONDS) out.push({ id: 'hsts', status: 'WARN', message: `HSTS max-age is ${hstsMaxAge} s (under 180 days)`, fix: `tls.hstsMaxAge: ${DEFAULTS.hstsMaxAge}` });
  if (!hstsIncludeSubDomains) out.push({ id: 'hsts', status: 'WARN', message: 'HSTS without includeSubDomains: sibling hosts can be stripped to HTTP', fix: 'tls.hstsIncludeSubDomains: true' });
  return out.length > 0 ? out : [pass('hsts', `max-age=${hstsMaxAge}; includeSubDomains`)];
};

export const httpsRedirectCheck: Check = (ctx) => {
  if (!ctx.config) return [];
  const out = findingResults(ctx, ['force-https-off'], 'https-redirect');
  return out.length > 0 ? out : [pass('https-redirect', 'plain HTTP answers 308 to HTTPS')];
};

/** Meta's webhook client certificates (WHATSAPP_MTLS): on or off, and a CA file the gateway can use. */
export const whatsappMtlsCheck: Check = (ctx) => {
  const cfg = ctx.config;
  if (!cfg || !cfg.routes.some((r) => r.auth === 'whatsapp')) return [];
  const mode = cfg.whatsapp.mtls;
  if (!mode) return [pass('whatsapp-mtls', 'off (WHATSAPP_MTLS unset): webhook deliveries are checked by their signature alone')];
  const file = cfg.whatsapp.mtlsCaFile ?? '';
  const { ca, problem } = readClientCa(cfg, ctx.at(file));
  if (!ca) return [{ id: 'whatsapp-mtls', status: 'FAIL', message: problem, fix: "set WHATSAPP_MTLS_CA_FILE to Meta's outbound CA certificate (PEM), readable by the gateway" }];
  const expired = ca.certs.filter((c) => new Date(c.validTo).getTime() < ctx.now.getTime());
  if (expired.length > 0) return [{ id: 'whatsapp-mtls', status: 'FAIL', message: `the CA in ${file} expired (${expired.map((c) => c.validTo).join('; ')}): every delivery would be refused`, fix: "download Meta's current outbound CA certificate" }];
  return [pass('whatsapp-mtls', `${mode} on ${[...clientCertHosts(cfg)].join(', ')}; CA ${ca.certs.map((c) => c.subject.replace(/\n/g, ', ')).join(' | ')}`)];
};
