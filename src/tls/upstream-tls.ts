import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, type ConnectionOptions } from 'node:tls';

/** A route's `upstreamTls` key as the config holds it (file paths). */
export interface UpstreamTlsConfig {
  readonly ca?: string | undefined;
  readonly serverName?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

/** TLS options for one https upstream, read once, and a key naming them (pools are shared per origin and key). */
export interface UpstreamTls {
  /** ca / cert / key read from their files; `servername` the name sent and checked. */
  readonly options: ConnectionOptions & { servername: string };
  /** Stable across routes with the same settings, so they share keep-alive connections. */
  readonly key: string;
}

/** Every PEM certificate block of a file, parsed; throws naming the file when there is none or one is broken. */
export function readCertificates(file: string): { pem: Buffer; certs: X509Certificate[] } {
  const pem = readFileSync(file);
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${file}: no PEM certificate in it`);
  const certs = blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new Error(`${file}: certificate ${i + 1} does not parse (${(err as Error).message})`);
    }
  });
  return { pem, certs };
}

/**
 * Checks an `upstreamTls` setting's files: the CA file holds certificates, the client
 * certificate and key parse and belong together. Returns every problem, one per line, so
 * `config check` reports them at once; an empty list when all is well.
 */
export function upstreamTlsProblems(t: UpstreamTlsConfig): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const attempt = (path: string, fn: () => void): boolean => {
    try {
      fn();
      return true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      out.push({ path, message: e.syscall ? `cannot read ${e.path ?? ''}: ${e.code ?? e.message}` : e.code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' ? `${t.key} is not the key of ${t.cert}` : e.message });
      return false;
    }
  };
  if (t.ca) attempt('ca', () => readCertificates(t.ca as string));
  if (t.cert && t.key) {
    const certOk = attempt('cert', () => readCertificates(t.cert as string));
    const keyOk = attempt('key', () => readFileSync(t.key as string));
    // OpenSSL's own check that the key is the certificate's (SSL_CTX_check_private_key).
    if (certOk && keyOk) attempt('key', () => createSecureContext({ cert: readFileSync(t.cert as string), key: readFileSync(t.key as string) }));
  }
  return out;
}

/**
 * The TLS options of an https upstream. The name checked (and sent as SNI) is `serverName`,
 * else the upstream URL's host, never the Host header sent: with `preserveHost` (the default)
 * that is the public host, which an internal service's certificate does not carry. An IP
 * address is checked against the certificate's IP SANs and sends no SNI (RFC 6066 §3).
 */
export function upstreamTls(target: URL, t: UpstreamTlsConfig | undefined, base: ConnectionOptions = {}): UpstreamTls {
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const servername = t?.serverName ?? (isIP(host) ? '' : host);
  const files = { ca: t?.ca, cert: t?.cert, key: t?.key };
  const options: ConnectionOptions & { servername: string } = {
    ...base,
    ...(files.ca ? { ca: readFileSync(files.ca) } : {}),
    ...(files.cert && files.key ? { cert: readFileSync(files.cert), key: readFileSync(files.key) } : {}),
    servername,
    // Whatever NODE_TLS_REJECT_UNAUTHORIZED says.
    rejectUnauthorized: true,
  };
  const key = createHash('sha256').update(JSON.stringify([servername, files, base.ca ? String(base.ca) : ''])).digest('hex').slice(0, 16);
  return { options, key };
}
