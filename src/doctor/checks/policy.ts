import { insecureSettings, type PolicyFinding } from '../../config/policy.js';
import { prodFail, type CheckResult, type DoctorContext } from '../types.js';
import { acmeReplaces } from './acme-disk.js';

/**
 * The startup policy's verdicts (src/config/policy.ts), reused so doctor and startup never
 * disagree: each finding refuses startup in production, so it is a FAIL there and a WARN in
 * development. Doctor adds only what the policy does not check.
 */
const cache = new WeakMap<DoctorContext, PolicyFinding[]>();

export function policyFindings(ctx: DoctorContext): PolicyFinding[] {
  if (!ctx.config) return [];
  let found = cache.get(ctx);
  if (!found) {
    // With ACME, a certificate ACME replaces at start is not what production serves: startup does not judge it (src/bootstrap.ts), the certificate check reports it.
    found = insecureSettings(ctx.config, acmeReplaces(ctx) ? undefined : ctx.certificate?.pair?.info);
    // A certificate that exists but does not load is reported with its reason, not as "missing".
    if (ctx.certificate?.error) found = found.filter((f) => f.id !== 'certificate-missing');
    cache.set(ctx, found);
  }
  return found;
}

const FIXES: Record<string, (ctx: DoctorContext, finding: PolicyFinding) => string> = {
  'force-https-off': () => 'set FORCE_HTTPS=true in .env',
  'certificate-missing': (c) => `put the certificate chain and key at ${c.config?.tls.certFile} / ${c.config?.tls.keyFile} (TLS_CERT_FILE / TLS_KEY_FILE), e.g. from Let's Encrypt`,
  'certificate-self-signed': () => "use a certificate from a public CA (Let's Encrypt: certbot certonly --standalone -d api.<domain> -d nocodb.<domain> -d metabase.<domain>)",
  'certificate-expired': () => 'renew the certificate; the gateway reloads it on file change or SIGHUP',
  'key-mode': (c) => `chmod 600 ${c.config?.tls.keyFile}`,
  'cors-wildcard': () => 'list the exact origins (https://app.example.com) in CORS_ORIGINS and the routes’ cors.origins',
  'trusted-proxies-everything': () => 'set TRUSTED_PROXIES to the addresses of your own proxies only (e.g. 10.0.0.5/32), or leave it empty',
  'secret-missing': (_c, f) => (f.message.startsWith('WHATSAPP_APP_SECRET') ? "copy the app secret from Meta's app dashboard into .env" : 'npx crm-gateway setup production'),
  'secret-weak': (_c, f) => (f.message.startsWith('WHATSAPP_APP_SECRET') ? 'reset the app secret in Meta’s dashboard, then secrets rotate --whatsapp-app-secret-from-stdin' : `npx crm-gateway secrets generate ${/^([A-Z0-9_]+)/.exec(f.message)?.[1] ?? '<NAME>'}`),
};

/** Findings by id, as results of the checklist item `checkId`. */
export function findingResults(ctx: DoctorContext, ids: readonly string[], checkId: string): CheckResult[] {
  return policyFindings(ctx)
    .filter((f) => ids.includes(f.id))
    .map((f) => ({ id: checkId, status: prodFail(ctx), message: f.message, fix: FIXES[f.id]?.(ctx, f) }));
}

/** Ids some checklist item reports; anything else the policy adds later is still shown. */
export const MAPPED_FINDINGS = new Set(Object.keys(FIXES));
