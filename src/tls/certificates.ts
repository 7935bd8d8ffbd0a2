import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { tlsPolicy } from './options.js';

export interface CertificateInfo {
  subject: string;
  issuer: string;
  selfSigned: boolean;
  validFrom: Date;
  validTo: Date;
  altNames: string[];
  fingerprint256: string;
  /** Permission bits of the key file, e.g. 0o600. */
  keyMode: number;
}

export interface CertificatePair {
  cert: Buffer;
  key: Buffer;
  info: CertificateInfo;
}

const DEV_CERT_DAYS = 90;
/** Hosts of the default routes (config/gateway.yaml), under `localhost` and the domain. */
const DEV_SERVICE_HOSTS = ['api', 'nocodb', 'metabase'];

/**
 * Reads and checks a certificate and key: both parse, the key matches the certificate, and
 * OpenSSL accepts them with the gateway's TLS policy. Throws with the reason otherwise.
 */
export function loadCertificatePair(certFile: string, keyFile: string): CertificatePair {
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${certFile}: not a PEM certificate (${(err as Error).message})`);
  }
  try {
    createSecureContext({ ...tlsPolicy(), cert, key });
  } catch (err) {
    throw new Error(`${certFile} / ${keyFile}: rejected by OpenSSL (${(err as Error).message})`);
  }
  return { cert, key, info: describe(x509, statSync(keyFile).mode & 0o777) };
}

export function describe(x509: X509Certificate, keyMode: number): CertificateInfo {
  return {
    subject: x509.subject,
    issuer: x509.issuer,
    // Not checkIssued(): OpenSSL says "not issued" when keyUsage lacks keyCertSign, which is the
    // case for a leaf certificate like our own development one.
    selfSigned: x509.issuer === x509.subject && x509.verify(x509.publicKey),
    validFrom: new Date(x509.validFrom),
    validTo: new Date(x509.validTo),
    altNames: (x509.subjectAltName ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    fingerprint256: x509.fingerprint256,
    keyMode,
  };
}

/**
 * Writes a development certificate for `localhost` and `*.<domain>` (ECDSA P-256) when none
 * exists. The key file is created with mode 0600, so it is never readable by others, not
 * even for a moment. Returns true when it generated one.
 */
export async function ensureDevCertificate(certFile: string, keyFile: string, domain: string): Promise<boolean> {
  if (existsSync(certFile) || existsSync(keyFile)) return false;
  // Verifiers ignore a wildcard directly under a one-label name (`*.localhost`, `*.com`), so
  // the default routes' hosts are named explicitly as well.
  const services = [...new Set(['localhost', domain])].flatMap((d) => DEV_SERVICE_HOSTS.map((h) => `${h}.${d}`));
  const names = [...new Set(['localhost', `*.localhost`, domain, `*.${domain}`, ...services])];
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + DEV_CERT_DAYS * 86_400_000);
  // Loaded only to generate: selfsigned and its X.509 stack (~200 modules) cost every gateway process ~10 MB RSS.
  const { default: selfsigned } = await import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: domain }, { name: 'organizationName', value: 'crm-gateway development' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...names.map((value) => ({ type: 2 as const, value })), { type: 7 as const, ip: '127.0.0.1' }, { type: 7 as const, ip: '::1' }],
      },
    ],
  });
  mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(certFile), { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, pems.private, { mode: 0o600, flag: 'wx' });
  chmodSync(keyFile, 0o600); // a umask can only remove bits; this makes the mode exact
  writeFileSync(certFile, pems.cert, { mode: 0o644, flag: 'wx' });
  return true;
}
