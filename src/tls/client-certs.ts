import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { GatewayConfig } from '../config/schema.js';
import { tlsPolicy } from './options.js';
import { readCertificates } from './upstream-tls.js';

/**
 * The subject Meta's webhook client certificate carries (developers.facebook.com, "Webhooks:
 * mTLS"): the only CN accepted, compared exactly.
 */
export const META_CLIENT_CERT_CN = 'client.webhooks.fbclientcerts.com';

export type ClientCertMode = 'required' | 'optional';

/** Meta's outbound CA as read at startup: the PEM for OpenSSL and the parsed certificates. */
export interface ClientCa {
  readonly file: string;
  readonly pem: Buffer;
  readonly certs: readonly X509Certificate[];
}

/**
 * Reads the CA file and checks it holds CA certificates only (basicConstraints CA:TRUE): a
 * leaf given by mistake would make OpenSSL trust that one certificate and nothing Meta signs.
 * Throws with the reason.
 */
export function loadClientCa(file: string): ClientCa {
  const { pem, certs } = readCertificates(file);
  const notCa = certs.findIndex((c) => !c.ca);
  if (notCa >= 0) throw new Error(`${file}: certificate ${notCa + 1} (${oneLine(certs[notCa]?.subject)}) is not a CA certificate`);
  return { file, pem, certs };
}

/**
 * WHATSAPP_MTLS_CA_FILE read and checked, or the one message that says why it cannot be used:
 * startup (src/bootstrap.ts), `config check` (through it) and doctor all print this one.
 * `path` is where this process opens it (doctor resolves it against the deployment folder).
 */
export function readClientCa(cfg: GatewayConfig, path = cfg.whatsapp.mtlsCaFile ?? ''): { ca: ClientCa; problem?: undefined } | { ca?: undefined; problem: string } {
  const file = cfg.whatsapp.mtlsCaFile ?? '';
  try {
    return { ca: loadClientCa(path) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Named as configured, not as opened: doctor (which resolves against its folder) and the gateway then print the same line.
    const why = e.code ? `cannot read ${file} (${e.code})` : path === file ? e.message : e.message.split(path).join(file);
    return { problem: `WHATSAPP_MTLS=${cfg.whatsapp.mtls ?? ''} but the CA file is unusable: ${why}` };
  }
}

/** The TLS server names a client certificate is asked for on: the hosts of the webhook routes. */
export function clientCertHosts(cfg: GatewayConfig): ReadonlySet<string> {
  if (!cfg.whatsapp.mtls) return new Set();
  return new Set(cfg.routes.flatMap((r) => (r.auth === 'whatsapp' && r.host ? [r.host] : [])));
}

/** What an SNICallback may reach on the socket it is called for (Node calls it as a method of the socket). */
interface HandshakingSocket {
  _handle?: { setVerifyMode?: (requestCert: boolean, rejectUnauthorized: boolean) => void } | null;
  _requestCert?: boolean;
  _rejectUnauthorized?: boolean;
}

export interface ClientCertRequest {
  /** The HTTPS server's SNICallback. */
  readonly SNICallback: (this: unknown, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  /** A new server certificate (hot reload): the webhook hosts' context follows it. */
  update(cert: Buffer, key: Buffer): void;
}

/**
 * Asks for a client certificate on the webhook hosts only, so no browser is ever prompted on
 * the others (a browser shows its certificate picker only on a CertificateRequest).
 *
 * Why this way: Node sets `requestCert` per server, and a per-SNI SecureContext cannot turn it
 * on; renegotiation (`tlsSocket.renegotiate`) is off (SSL_OP_NO_RENEGOTIATION) and absent from
 * TLS 1.3; a second port would need Meta to call a non-443 URL. OpenSSL reads the verify mode
 * when it writes the CertificateRequest, after the certificate callback in which Node runs the
 * SNICallback; so, for a webhook server name, the callback sets the socket's verify mode (what
 * `renegotiate()` does, through the same handle method) and answers with a context whose only
 * trust anchor is Meta's CA (its names are the CA names sent). `rejectUnauthorized` stays off:
 * the handshake completes, and the webhook route refuses with an error code and an event
 * (src/webhook/client-cert.ts) instead of a bare TLS alert. Any other name gets the server's
 * own context and no request: test/integration/webhook-mtls.test.ts checks both with openssl,
 * test/e2e/webhook-mtls-browser.test.ts with Chromium's NetLog. A resumed session skips this
 * callback; judgeClientCert then reads the verdict the session stored.
 * Should a Node release drop that handle method, the webhook host's handshake fails (closed),
 * and no other host changes.
 */
export function createClientCertRequest(hosts: ReadonlySet<string>, ca: ClientCa, cert: Buffer, key: Buffer): ClientCertRequest {
  let context = webhookContext(ca, cert, key);
  return {
    SNICallback(servername, cb) {
      if (!hosts.has(servername.toLowerCase().replace(/\.$/, ''))) return cb(null);
      const socket = this as HandshakingSocket;
      const setVerifyMode = socket._handle?.setVerifyMode;
      if (typeof setVerifyMode !== 'function') return cb(new Error('client certificates cannot be requested on this Node.js version'));
      setVerifyMode.call(socket._handle, true, false);
      // Read by Node when the handshake is done: verifies (socket.authorized) without refusing.
      socket._requestCert = true;
      socket._rejectUnauthorized = false;
      cb(null, context);
    },
    update(newCert, newKey) {
      context = webhookContext(ca, newCert, newKey);
    },
  };
}

function webhookContext(ca: ClientCa, cert: Buffer, key: Buffer): SecureContext {
  return createSecureContext({ ...tlsPolicy(), cert, key, ca: ca.pem });
}

/** Why a client certificate was refused, for the event and the error detail. */
export type ClientCertRefusal = 'missing' | 'untrusted' | 'wrong_subject' | 'not_yet_valid' | 'expired';

/** A client certificate's facts, for the security event (never sent to the client). */
export interface ClientCertFacts {
  readonly subject?: string | undefined;
  readonly issuer?: string | undefined;
  readonly fingerprint256?: string | undefined;
  readonly validTo?: string | undefined;
}

export type ClientCertVerdict = { ok: true; present: boolean; facts: ClientCertFacts } | { ok: false; reason: ClientCertRefusal; facts: ClientCertFacts; detail: string };

/**
 * Judges the client certificate of a webhook request's TLS connection: it chains to Meta's CA
 * (OpenSSL's verdict with that CA as the only anchor: `socket.authorized`, or on a resumed session
 * the verdict the session stored), its subject CN is
 * exactly META_CLIENT_CERT_CN, and it is within its validity now (OpenSSL checked that at the
 * handshake; a keep-alive connection can outlive it, so it is checked again per request).
 */
export function judgeClientCert(socket: TLSSocket | undefined, now: Date = new Date()): ClientCertVerdict {
  const x509 = socket?.getPeerX509Certificate?.();
  if (!socket || !x509) return { ok: false, reason: 'missing', facts: {}, detail: 'no client certificate was presented' };
  const facts: ClientCertFacts = { subject: oneLine(x509.subject), issuer: oneLine(x509.issuer), fingerprint256: x509.fingerprint256, validTo: new Date(x509.validTo).toISOString() };
  const refuse = (reason: ClientCertRefusal, detail: string): ClientCertVerdict => ({ ok: false, reason, facts, detail });
  // A resumed session skips the SNICallback, so Node (whose `authorized` is read only when
  // `_requestCert` was set in it) leaves `authorized` false with no error. The verdict is then
  // OpenSSL's own, from the full handshake that made the session: it is stored in the session
  // (SSL_SESSION verify_result, carried in the ticket or the cache) and restored on resumption,
  // and `verifyError()` reads it (test/integration/webhook-mtls.test.ts checks it for a good
  // chain through an intermediate and for a bad certificate, TLS 1.3 and 1.2). Re-verifying here
  // instead fails: the server side of a session keeps the leaf but not the intermediates the
  // client sent. Turning resumption off on the webhook host would cost Meta a full handshake per
  // delivery and cannot be done per SNI context in Node (tickets are decided before the SNICallback).
  const resumed = !socket.authorized && (socket.authorizationError ?? null) === null && socket.isSessionReused();
  const why = resumed ? storedVerdict(socket) : socket.authorized ? null : String(socket.authorizationError ?? 'not verified');
  if (why !== null) {
    const how = resumed ? 'resumed session: ' : '';
    // OpenSSL checks the dates as it checks the chain; its verdict names which one failed.
    if (why === 'CERT_HAS_EXPIRED') return refuse('expired', `${how}expired ${x509.validTo}`);
    if (why === 'CERT_NOT_YET_VALID') return refuse('not_yet_valid', `${how}valid from ${x509.validFrom}`);
    return refuse('untrusted', `${how}does not chain to WHATSAPP_MTLS_CA_FILE (${why})`);
  }
  const cns = x509.subject.split('\n').filter((l) => l.startsWith('CN=')).map((l) => l.slice(3));
  if (cns.length !== 1 || cns[0] !== META_CLIENT_CERT_CN) return refuse('wrong_subject', `subject CN ${JSON.stringify(cns.join(','))} is not ${META_CLIENT_CERT_CN}`);
  if (now.getTime() < new Date(x509.validFrom).getTime()) return refuse('not_yet_valid', `valid from ${x509.validFrom}`);
  if (now.getTime() > new Date(x509.validTo).getTime()) return refuse('expired', `expired ${x509.validTo}`);
  return { ok: true, present: true, facts };
}

/**
 * OpenSSL's verdict on the peer's chain as the session stores it: null when it verified, else
 * the error code. Fails closed should a Node release drop the handle method.
 */
function storedVerdict(socket: TLSSocket): string | null {
  const handle = (socket as TLSSocket & { _handle?: { verifyError?: () => (Error & { code?: string }) | null | undefined } | null })._handle;
  if (typeof handle?.verifyError !== 'function') return 'verdict unavailable';
  const err = handle.verifyError();
  return err ? (err.code ?? err.message) : null;
}

function oneLine(dn: string | undefined): string {
  return (dn ?? '').replace(/\n/g, ', ');
}
