import { constants } from 'node:crypto';
import type { SecureContextOptions, TlsOptions } from 'node:tls';

/**
 * TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only (Mozilla "intermediate" minus
 * DHE). TLS 1.3 suites are all AEAD and use OpenSSL's default order.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const TLS13_CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

export const ECDH_CURVES = 'X25519:P-256:P-384';

/** No renegotiation, no compression, server picks the cipher. */
const SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_COMPRESSION | constants.SSL_OP_CIPHER_SERVER_PREFERENCE;

/** Everything but the certificate: used for the server and for every reloaded context. */
export function tlsPolicy(): SecureContextOptions & Pick<TlsOptions, 'honorCipherOrder'> {
  return {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: `${TLS13_CIPHERSUITES}:${TLS12_CIPHERS}`,
    ecdhCurve: ECDH_CURVES,
    honorCipherOrder: true,
    secureOptions: SECURE_OPTIONS,
  };
}
