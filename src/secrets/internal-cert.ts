import { existsSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { dirname } from 'node:path';
import { ensurePrivateDir, writeNewPrivateFile } from './files.js';

/**
 * PostgreSQL's certificate inside the compose network. Clients pin it (`sslrootcert`) and
 * check its name, so it needs no public CA; it only has to outlive many rotations.
 */
// Beside the other secrets, not in certs/: the gateway mounts certs/ and must not get this key.
export const POSTGRES_CERT_FILE = 'secrets/postgres.crt';
export const POSTGRES_KEY_FILE = 'secrets/postgres.key';
/** The compose service name: the host name clients connect to and verify. */
export const POSTGRES_HOST = 'postgres';
const INTERNAL_CERT_DAYS = 3 * 365;

export interface InternalCertificateState {
  certFile: string;
  keyFile: string;
  created: boolean;
  validTo: Date;
}

/** Creates the pair when neither file exists (key mode 0600 from creation); never replaces one. */
export async function ensureInternalCertificate(certFile: string, keyFile: string, host = POSTGRES_HOST): Promise<InternalCertificateState> {
  if (existsSync(certFile) || existsSync(keyFile)) {
    if (!existsSync(certFile) || !existsSync(keyFile)) throw new Error(`${certFile} and ${keyFile} must both exist or both be absent`);
    return { certFile, keyFile, created: false, validTo: new Date(new X509Certificate(readFileSync(certFile)).validTo) };
  }
  const notBefore = new Date(Date.now() - 60_000);
  const validTo = new Date(notBefore.getTime() + INTERNAL_CERT_DAYS * 86_400_000);
  // Loaded only to make a pair: selfsigned and its X.509 code cost ~3 MB of heap (issue 13, item 5).
  const { default: selfsigned } = await import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: host }, { name: 'organizationName', value: 'crm-gateway internal' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: validTo,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2 as const, value: host }] },
    ],
  });
  ensurePrivateDir(dirname(keyFile));
  writeNewPrivateFile(keyFile, pems.private);
  writeNewPrivateFile(certFile, pems.cert, 0o644);
  return { certFile, keyFile, created: true, validTo };
}
