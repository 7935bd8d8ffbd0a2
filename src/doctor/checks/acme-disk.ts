import { acmeHosts } from '../../tls/acme/hosts.js';
import { acmeUnservable } from '../../tls/acme/on-disk.js';
import { readAcmeState, type AcmeState } from '../../tls/acme/state.js';
import type { DoctorContext, Status } from '../types.js';

/**
 * Failed orders in a row (DATA_DIR/acme/state.json) after which doctor stops trusting ACME to
 * fix a certificate it has to replace. One failure can be the directory down for a minute; two
 * in a row are already 5 + 10 minutes of backoff (src/tls/acme/renewal.ts) with nothing served
 * but the placeholder or an expiring certificate: something an operator must look at.
 */
export const ACME_REPEATED_FAILURES = 2;

/** What ACME last did here, or undefined without ACME or without a state file. */
export function acmeState(ctx: DoctorContext): AcmeState | undefined {
  return ctx.config?.tls.acme ? readAcmeState(ctx.at(ctx.config.stores.dataDir)) : undefined;
}

/** FAIL (in production) when ACME's orders keep failing, WARN otherwise: ACME is expected to fix it. */
export function acmeFixStatus(ctx: DoctorContext): Status {
  const state = acmeState(ctx);
  return ctx.production && state?.status === 'failing' && state.failures >= ACME_REPEATED_FAILURES ? 'FAIL' : 'WARN';
}

/** One line on what ACME last did, for a fix text. */
export function acmeStateLine(ctx: DoctorContext): string {
  const state = acmeState(ctx);
  if (!state) return 'no ACME state yet (the gateway has not run with ACME here)';
  return `ACME state: ${state.status}${state.failures > 0 ? `, ${state.failures} failure(s) in a row, last error: ${state.lastError ?? 'unknown'}` : ''}${state.nextAttempt ? `, next attempt ${state.nextAttempt}` : ''}`;
}

/**
 * With ACME on: why the certificate on disk is one ACME replaces at start instead of serving it
 * (expired, self-signed, wrong host, not loading), the same rule startup applies
 * (src/tls/acme/on-disk.ts); undefined without ACME, without a file, or when it is served.
 */
export function acmeReplaces(ctx: DoctorContext): string | undefined {
  const cfg = ctx.config;
  if (!cfg?.tls.acme || !ctx.certificate) return undefined;
  if (ctx.certificate.error) return `the certificate on disk does not load (${ctx.certificate.error})`;
  return ctx.certificate.pair ? acmeUnservable(ctx.certificate.pair, acmeHosts(cfg).names, ctx.now) : undefined;
}
