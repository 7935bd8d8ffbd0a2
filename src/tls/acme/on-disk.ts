import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { GatewayConfig } from '../../config/schema.js';
import { loadCertificatePair, type CertificatePair } from '../certificates.js';
import { acmeHosts } from './hosts.js';

/** What is at TLS_CERT_FILE / TLS_KEY_FILE when ACME is on: the pair if it loads, and why it is not served. */
export interface AcmeOnDisk {
  readonly pair?: CertificatePair | undefined;
  /** Undefined when startup serves the pair until ACME's own arrives; otherwise the reason (logs, doctor). */
  readonly unservable?: string | undefined;
}

const FILE = 'the certificate on disk';

/** What no client accepts whatever the host: self-signed, the development CA's, outside its validity. */
function lifetimeProblem(pair: CertificatePair, now: Date): string | undefined {
  if (pair.info.selfSigned) return `${FILE} is self-signed`;
  if (pair.info.developmentCa) return `${FILE} is issued by the crm-gateway development CA`;
  if (pair.info.validTo.getTime() < now.getTime()) return `${FILE} expired on ${pair.info.validTo.toISOString()}`;
  if (pair.info.validFrom.getTime() > now.getTime()) return `${FILE} is not valid before ${pair.info.validFrom.toISOString()}`;
  return undefined;
}

const uncovered = (pair: CertificatePair, names: readonly string[]): string[] => {
  const x509 = new X509Certificate(pair.cert);
  return names.filter((n) => x509.checkHost(n) === undefined);
};

/**
 * Why `pair` is not a certificate ACME keeps (it orders a new one), or undefined when it is: a
 * CA's (not self-signed, not the development CA's), valid now, covering every ACME host.
 */
export function acmeUnusable(pair: CertificatePair, names: readonly string[], now = new Date()): string | undefined {
  const life = lifetimeProblem(pair, now);
  if (life) return life;
  const missing = uncovered(pair, names);
  return missing.length > 0 ? `${FILE} does not cover ${missing.join(', ')}` : undefined;
}

/**
 * Why startup does not serve `pair` while ACME orders (it serves the in-memory placeholder
 * instead), or undefined when it does: one rule for startup (src/bootstrap.ts,
 * src/server/start.ts) and doctor. A CA's certificate valid now and covering some of the hosts
 * still serves those while ACME orders one for all; one covering none is no better than the placeholder.
 */
export function acmeUnservable(pair: CertificatePair, names: readonly string[], now = new Date()): string | undefined {
  const life = lifetimeProblem(pair, now);
  if (life) return life;
  return names.length > 0 && uncovered(pair, names).length === names.length ? `${FILE} does not cover any of ${names.join(', ')}` : undefined;
}

/** Reads the pair at `certFile` / `keyFile` (paths as this process opens them) and judges it for startup. */
export function readAcmeOnDisk(cfg: GatewayConfig, certFile = cfg.tls.certFile, keyFile = cfg.tls.keyFile, now = new Date()): AcmeOnDisk {
  if (!existsSync(certFile) || !existsSync(keyFile)) return { unservable: 'no certificate yet' };
  let pair: CertificatePair;
  try {
    pair = loadCertificatePair(certFile, keyFile);
  } catch (err) {
    return { unservable: `${FILE} does not load (${(err as Error).message})` };
  }
  return { pair, unservable: acmeUnservable(pair, acmeHosts(cfg).names, now) };
}
