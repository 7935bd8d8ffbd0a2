import { X509Certificate } from 'node:crypto';
import { describe, type CertificatePair } from '../certificates.js';

/**
 * What the HTTPS listener serves until the first ACME certificate is written: a self-signed
 * certificate made in memory (never written: the files hold only what the CA issued, so doctor
 * and a restart never mistake it for the real one). It lives one day; the first order takes
 * seconds. selfsigned is loaded only here (startup-footprint test).
 */
export async function placeholderPair(hosts: readonly string[]): Promise<CertificatePair> {
  const { default: selfsigned } = await import('selfsigned');
  const notBefore = new Date(Date.now() - 60_000);
  const names = hosts.length > 0 ? hosts : ['localhost'];
  const pems = await selfsigned.generate([{ name: 'commonName', value: names[0] as string }, { name: 'organizationName', value: 'crm-gateway (waiting for ACME)' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: new Date(notBefore.getTime() + 86_400_000),
    extensions: [{ name: 'subjectAltName', altNames: names.map((value) => ({ type: 2 as const, value })) }],
  });
  const cert = Buffer.from(pems.cert);
  return { cert, key: Buffer.from(pems.private), info: describe(new X509Certificate(cert), 0o600) };
}
