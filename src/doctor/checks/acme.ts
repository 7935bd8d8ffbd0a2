import { existsSync } from 'node:fs';
import { acmeHosts } from '../../tls/acme/hosts.js';
import { readAcmeState } from '../../tls/acme/state.js';
import { CERT_EXPIRY_WARNING_DAYS } from './tls.js';
import { ACME_REPEATED_FAILURES } from './acme-disk.js';
import { pass, prodFail, type Check, type CheckResult } from '../types.js';

const DAY_MS = 86_400_000;

/**
 * With ACME (tls.acme): the directory and its CA file, the names the certificate covers (and
 * those left out), and what the gateway last did (DATA_DIR/acme/state.json, written by
 * src/tls/acme/service.ts): last success, next attempt, last error. A fresh machine with no
 * certificate yet passes: the gateway orders one when it starts. Nothing here talks to the CA.
 */
export const acmeCheck: Check = (ctx) => {
  const settings = ctx.config?.tls.acme;
  if (!ctx.config || !settings) return [];
  const out: CheckResult[] = [];
  if (settings.caFile && !existsSync(ctx.at(settings.caFile))) {
    out.push({ id: 'acme', status: 'FAIL', message: `ACME_CA_FILE ${settings.caFile} does not exist`, fix: 'give the CA certificate (PEM) of your private ACME server, or unset ACME_CA_FILE for a public CA' });
  }
  const hosts = acmeHosts(ctx.config);
  if (hosts.names.length === 0) {
    out.push({ id: 'acme', status: 'FAIL', message: 'no route host a CA can validate (IP addresses and loopback names are left out)', fix: 'route on public DNS names (api.<domain>, …), or unset ACME_DIRECTORY_URL' });
    return out;
  }
  const left = hosts.skipped.length > 0 ? `; left out: ${hosts.skipped.map((s) => `${s.host} (${s.why})`).join(', ')}` : '';
  const pair = ctx.certificate?.pair;
  const state = readAcmeState(ctx.at(ctx.config.stores.dataDir));
  const daysLeft = pair ? Math.floor((pair.info.validTo.getTime() - ctx.now.getTime()) / DAY_MS) : undefined;
  if (state?.status === 'failing') {
    // A single failure may be the directory down for a minute; repeated ones with little or nothing left to serve are a FAIL.
    const urgent = (daysLeft === undefined || daysLeft < CERT_EXPIRY_WARNING_DAYS) && state.failures >= ACME_REPEATED_FAILURES;
    out.push({
      id: 'acme',
      status: urgent ? prodFail(ctx) : 'WARN',
      message: `ACME orders failing (${state.failures} in a row; last error: ${state.lastError ?? 'unknown'}; next attempt ${state.nextAttempt ?? 'unknown'}); ${pair ? (daysLeft !== undefined && daysLeft < 0 ? `the certificate on disk expired on ${pair.info.validTo.toISOString()}` : `the current certificate stays valid for ${daysLeft} days`) : 'no certificate yet'}`,
      fix: 'see acme.order_failed in the security log: DNS of each host pointing here, port 80 (http-01) or 443 (tls-alpn-01) reachable from the Internet, the directory URL',
    });
    return out;
  }
  if (out.length > 0) return out;
  if (!pair || !state?.lastSuccess) {
    const now = pair ? `a certificate not yet from ACME (until ${pair.info.validTo.toISOString()})` : 'no certificate yet';
    return [pass('acme', `ACME from ${settings.directoryUrl} (${settings.challenge}) for ${hosts.names.join(', ')}: ${now}; the gateway orders one when it starts${left}`)];
  }
  return [pass('acme', `ACME from ${settings.directoryUrl} (${settings.challenge}) for ${hosts.names.join(', ')}: last success ${state.lastSuccess}; certificate valid until ${pair.info.validTo.toISOString()} (${daysLeft} days); next check ${state.nextAttempt ?? 'at start'}${left}`)];
};
