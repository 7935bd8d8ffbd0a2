import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { tlsPolicy } from './options.js';

export interface CertificateInfo {
  subject: string;
  issuer: string;
  selfSigned: boolean;
  validFrom: Date;
  validTo: Date;
  altNames: string[];
  /**
   * Issued by a crm-gateway development CA (see ensureDevCa): trusted only where someone
   * imported that CA, so production refuses it like a self-signed one.
   */
  developmentCa: boolean;
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
/** Long enough that nobody re-imports it into a browser every season; it never leaves the machine. */
const DEV_CA_DAYS = 5 * 365;
/**
 * The CA's organization name. describe() recognises the CA's leaves by it: a marker, not a
 * security boundary (anyone can write it), so it only ever makes the policy stricter.
 */
export const DEV_CA_ORGANIZATION = 'crm-gateway development CA';
/** The CA's files, beside the certificate it signs (certs/ by default, git-ignored). */
export const DEV_CA_CERT_NAME = 'dev-ca.crt';
const DEV_CA_KEY_NAME = 'dev-ca.key';
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
    developmentCa: x509.issuer !== x509.subject && x509.issuer.split('\n').includes(`O=${DEV_CA_ORGANIZATION}`),
    fingerprint256: x509.fingerprint256,
    keyMode,
  };
}

/** Where the development CA of a certificate file lives: the same folder. */
export function devCaPaths(certFile: string): { cert: string; key: string } {
  const dir = dirname(certFile);
  return { cert: join(dir, DEV_CA_CERT_NAME), key: join(dir, DEV_CA_KEY_NAME) };
}

/** Creates the folder (0700) and writes the key with mode 0600 from the first byte. */
function writeKeyPair(certFile: string, keyFile: string, certPem: string, keyPem: string): void {
  mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(certFile), { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, keyPem, { mode: 0o600, flag: 'wx' });
  chmodSync(keyFile, 0o600); // a umask can only remove bits; this makes the mode exact
  writeFileSync(certFile, certPem, { mode: 0o644, flag: 'wx' });
}

/**
 * The development CA of `certFile`'s folder, created on first use (ECDSA P-256, key 0600).
 * Why a CA and not a self-signed leaf: Chromium does not store responses that came with a
 * certificate error in its HTTP cache, so with a clicked-through self-signed certificate every
 * warm page load fetched every asset again (issue 12, item 10). A browser that imports this
 * CA once trusts every leaf it signs, and caches.
 */
export async function ensureDevCa(certFile: string): Promise<{ cert: string; key: string; certFile: string; created: boolean }> {
  const paths = devCaPaths(certFile);
  if (existsSync(paths.cert) && existsSync(paths.key)) {
    return { cert: readFileSync(paths.cert, 'utf8'), key: readFileSync(paths.key, 'utf8'), certFile: paths.cert, created: false };
  }
  if (existsSync(paths.cert) || existsSync(paths.key)) {
    throw new Error(`${paths.cert} and ${paths.key} go together: one of them is missing (delete the other to get a new development CA)`);
  }
  const notBefore = new Date(Date.now() - 60_000);
  const { default: selfsigned } = await import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: `${DEV_CA_ORGANIZATION} (${hostname()})` }, { name: 'organizationName', value: DEV_CA_ORGANIZATION }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: new Date(notBefore.getTime() + DEV_CA_DAYS * 86_400_000),
    extensions: [
      // pathLen 0: it signs leaves only, never another CA.
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  writeKeyPair(paths.cert, paths.key, pems.cert, pems.private);
  return { cert: pems.cert, key: pems.private, certFile: paths.cert, created: true };
}

/** Options of ensureDevCertificate. */
export interface DevCertificateOptions {
  /** More DNS names for the leaf, e.g. the hosts of routes outside the default three. */
  extraHosts?: readonly string[];
}

/**
 * Writes a development certificate for `localhost` and `*.<domain>` (ECDSA P-256), issued by
 * the folder's development CA (created if needed), when none exists. The certificate file
 * holds the leaf and then the CA, so a client given that one file as its trust anchor (curl
 * --cacert, node's `ca`) verifies the chain. The key file is created with mode 0600, so it is
 * never readable by others, not even for a moment. Returns true when it generated one.
 */
export async function ensureDevCertificate(certFile: string, keyFile: string, domain: string, opts: DevCertificateOptions = {}): Promise<boolean> {
  if (existsSync(certFile) || existsSync(keyFile)) return false;
  const ca = await ensureDevCa(certFile);
  // Verifiers ignore a wildcard directly under a one-label name (`*.localhost`, `*.com`), so
  // the default routes' hosts are named explicitly as well.
  const services = [...new Set(['localhost', domain])].flatMap((d) => DEV_SERVICE_HOSTS.map((h) => `${h}.${d}`));
  const names = [...new Set(['localhost', `*.localhost`, domain, `*.${domain}`, ...services, ...(opts.extraHosts ?? [])])];
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + DEV_CERT_DAYS * 86_400_000);
  // Loaded only to generate: selfsigned and its X.509 stack (~200 modules) cost every gateway process ~10 MB RSS.
  const { default: selfsigned } = await import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: domain }, { name: 'organizationName', value: 'crm-gateway development' }], {
    ca: { cert: ca.cert, key: ca.key },
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
  writeKeyPair(certFile, keyFile, `${pems.cert.trimEnd()}\n${ca.cert.trimEnd()}\n`, pems.private);
  return true;
}
