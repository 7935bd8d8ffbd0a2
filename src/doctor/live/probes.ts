import http from 'node:http';
import https from 'node:https';
import tls, { type PeerCertificate, type SecureVersion } from 'node:tls';

/**
 * Network probes of `doctor --live`. Each makes one connection, never follows redirects,
 * never retries, and gives up after `timeoutMs`. Certificates are not verified here (a
 * self-signed gateway must still be probed); the certificate check judges them separately.
 */
export interface Target {
  /** Address to connect to (the URL's host). */
  host: string;
  port: number;
  /** SNI and Host header: the route's host. */
  servername: string | undefined;
  hostHeader: string;
}

export type HandshakeResult =
  | { ok: true; protocol: string; cipher: string; cert: PeerCertificate; authorized: boolean; authorizationError: string | undefined }
  | { ok: false; error: string };

/** TLS 1.0/1.1 need OpenSSL's security level 0 on the client to be offered at all. */
const LEGACY_CLIENT_CIPHERS = 'DEFAULT:@SECLEVEL=0';

export function handshake(
  t: Pick<Target, 'host' | 'port' | 'servername'>,
  opts: { version?: SecureVersion; ciphers?: string; ca?: string | undefined; timeoutMs: number },
): Promise<HandshakeResult> {
  const legacy = opts.version === 'TLSv1' || opts.version === 'TLSv1.1';
  let socket: tls.TLSSocket;
  try {
    socket = tls.connect({
      host: t.host,
      port: t.port,
      ...(t.servername ? { servername: t.servername } : {}),
      ...(opts.version ? { minVersion: opts.version, maxVersion: opts.version } : {}),
      ...(opts.ciphers || legacy ? { ciphers: opts.ciphers ?? LEGACY_CLIENT_CIPHERS } : {}),
      ...(opts.ca ? { ca: opts.ca } : {}),
      rejectUnauthorized: false,
    });
  } catch (err) {
    // This client's OpenSSL cannot offer the version at all.
    return Promise.resolve({ ok: false, error: `client-unsupported: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
  }
  return new Promise((resolve) => {
    const done = (r: HandshakeResult): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: `no answer within ${opts.timeoutMs} ms` }), opts.timeoutMs);
    socket.once('secureConnect', () => {
      done({
        ok: true,
        protocol: socket.getProtocol() ?? '?',
        cipher: socket.getCipher()?.name ?? '?',
        cert: socket.getPeerCertificate(),
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
      });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, error: err.code ?? err.message }));
  });
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The first few KB, for error codes in JSON bodies. */
  body: string;
}

const MAX_BODY = 4096;

/** One request over HTTPS (or HTTP with `plain`); resolves with the answer or an error text. */
export function request(
  t: Target,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string; plain?: boolean; timeoutMs: number },
): Promise<HttpAnswer | { error: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: HttpAnswer | { error: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const common = {
      host: t.host,
      port: t.port,
      method: opts.method ?? 'GET',
      path: opts.path,
      headers: { host: t.hostHeader, 'user-agent': 'crm-gateway-doctor', ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}), ...opts.headers },
      agent: false as const,
    };
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_BODY) chunks.push(c);
        size += c.length;
        if (size >= MAX_BODY) done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY) });
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => done({ error: err.message }));
    };
    const req = opts.plain
      ? http.request(common, onResponse)
      : https.request({ ...common, ...(t.servername ? { servername: t.servername } : {}), rejectUnauthorized: false }, onResponse);
    const timer = setTimeout(() => done({ error: `no answer within ${opts.timeoutMs} ms` }), opts.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => done({ error: err.code ?? err.message }));
    req.end(opts.body);
  });
}

