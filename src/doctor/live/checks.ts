import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import tls, { type SecureVersion } from 'node:tls';
import type { RouteConfig } from '../../config/schema.js';
import { DEFAULTS } from '../../config/defaults.js';
import { routeHosts } from '../../routing/route-hosts.js';
import { CERT_EXPIRY_WARNING_DAYS, MIN_HSTS_SECONDS } from '../checks/tls.js';
import { pass, type CheckResult, type Status } from '../types.js';
import { handshake, request, type HttpAnswer, type Target } from './probes.js';
import { probePort } from '../../net/probe-port.js';
import type { TargetReach } from './target.js';

/** Backend ports of the stack (PostgreSQL, Redis, CRM API, NocoDB, Metabase, gateway admin). */
export const BACKEND_PORTS: ReadonlyMap<number, string> = new Map([
  [5432, 'PostgreSQL'],
  [6379, 'Redis'],
  [8000, 'CRM API'],
  [8080, 'NocoDB'],
  [3000, 'Metabase'],
  [DEFAULTS.adminPort, 'gateway admin'],
]);

export interface LiveContext {
  url: URL;
  /** Where to connect: the URL's host. */
  address: string;
  port: number;
  routes: readonly RouteConfig[];
  production: boolean;
  /** PEM of a private CA to trust (tests, internal deployments); else the system's store. */
  ca: string | undefined;
  httpUrl: URL;
  timeoutMs: number;
  /** Ports to probe; undefined: the backend ports unless the target is this machine. */
  ports: readonly number[] | undefined;
  /** The backend ports to probe by default, named: the configured ones, else BACKEND_PORTS. */
  backendPorts: ReadonlyMap<number, string>;
  /** The gateway's own ports as configured, for the fix lines. */
  gatewayPorts: { https: number; http: number };
  /** Whether and how the target was reached, found before any check runs. */
  reach: TargetReach;
  /** Every HTTPS answer seen, for the HSTS verdict. */
  answers: { what: string; answer: HttpAnswer }[];
}

const DAY_MS = 86_400_000;
const prodFail = (lc: LiveContext): Status => (lc.production ? 'FAIL' : 'WARN');

/** The name clients use: the URL's host, or the first route host when the URL is an address. */
function primaryHost(lc: LiveContext): string {
  if (isIP(lc.url.hostname.replace(/^\[|\]$/g, '')) === 0) return lc.url.hostname;
  return lc.routes.find((r) => r.host)?.host ?? lc.url.hostname;
}

function routeTarget(lc: LiveContext, host: string): Target {
  return { host: lc.address, port: lc.port, servername: isIP(host) ? undefined : host, hostHeader: lc.port === 443 ? host : `${host}:${lc.port}` };
}

/** TLS 1.0 and 1.1 refused, 1.2 accepted, 1.3 offered; no CBC suites under 1.2. */
export async function tlsVersionsCheck(lc: LiveContext): Promise<CheckResult[]> {
  const t = routeTarget(lc, primaryHost(lc));
  const out: CheckResult[] = [];
  const offered: string[] = [];
  for (const version of ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as SecureVersion[]) {
    const r = await handshake(t, { version, timeoutMs: lc.timeoutMs });
    if (r.ok) offered.push(version);
    else if (r.error.startsWith('client-unsupported') && (version === 'TLSv1' || version === 'TLSv1.1')) {
      out.push({ id: 'live-tls-versions', status: 'WARN', message: `this machine's OpenSSL cannot offer ${version}, so refusing it was not tested` });
    }
  }
  const legacy = offered.filter((v) => v === 'TLSv1' || v === 'TLSv1.1');
  if (legacy.length > 0) out.push({ id: 'live-tls-versions', status: 'FAIL', message: `the server accepts ${legacy.join(' and ')}`, fix: 'minimum TLS 1.2 (the gateway enforces it; check any proxy or load balancer in front)' });
  if (!offered.includes('TLSv1.2') && !offered.includes('TLSv1.3')) {
    const why = (await handshake(t, { timeoutMs: lc.timeoutMs })) as { ok: boolean; error?: string };
    out.push({ id: 'live-tls-versions', status: 'FAIL', message: `${why.error ? `${why.error}: ` : ''}no TLS 1.2 or 1.3 handshake with ${lc.address}:${lc.port}`, fix: 'check the address, port and firewall' });
    return out;
  }
  if (!offered.includes('TLSv1.3')) out.push({ id: 'live-tls-versions', status: 'WARN', message: 'TLS 1.3 is not offered', fix: 'enable TLS 1.3 on whatever terminates TLS' });
  if (offered.includes('TLSv1.2')) {
    const cbc = await handshake(t, { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA:@SECLEVEL=0', timeoutMs: lc.timeoutMs });
    if (cbc.ok) out.push({ id: 'live-tls-versions', status: 'WARN', message: `TLS 1.2 accepts the non-AEAD suite ${cbc.cipher}`, fix: 'ECDHE with AES-GCM or ChaCha20 only (as the gateway does)' });
  }
  return out.length > 0 ? out : [pass('live-tls-versions', `offers ${offered.join(', ')}; refuses TLS 1.0 and 1.1 and CBC suites`)];
}

/** Trusted chain, names every route host, not expiring within 14 days. */
export async function liveCertificateCheck(lc: LiveContext): Promise<CheckResult[]> {
  const host = primaryHost(lc);
  const r = await handshake(routeTarget(lc, host), { ca: lc.ca, timeoutMs: lc.timeoutMs });
  if (!r.ok) return [{ id: 'live-certificate', status: 'FAIL', message: `${r.error}: no TLS handshake with ${lc.address}:${lc.port}` }];
  const out: CheckResult[] = [];
  if (!r.authorized) out.push({ id: 'live-certificate', status: prodFail(lc), message: `the certificate is not trusted (${r.authorizationError ?? 'unknown reason'})`, fix: lc.ca ? 'the chain does not lead to the CA given with --ca' : "install a certificate from a public CA (Let's Encrypt), with its full chain" });
  const hosts = [...routeHosts(lc.routes)];
  const uncovered = (hosts.length > 0 ? hosts : [host]).filter((h) => tls.checkServerIdentity(h, r.cert) !== undefined);
  if (uncovered.length > 0) out.push({ id: 'live-certificate', status: prodFail(lc), message: `the certificate does not name ${uncovered.join(', ')}`, fix: 'reissue it for every route host' });
  const validTo = new Date(r.cert.valid_to);
  const daysLeft = Math.floor((validTo.getTime() - Date.now()) / DAY_MS);
  if (daysLeft < CERT_EXPIRY_WARNING_DAYS) out.push({ id: 'live-certificate', status: daysLeft < 0 ? 'FAIL' : prodFail(lc), message: daysLeft < 0 ? `the certificate expired on ${validTo.toISOString()}` : `the certificate expires in ${daysLeft} days`, fix: 'renew it (certbot renew) and check automatic renewal' });
  return out.length > 0 ? out : [pass('live-certificate', `trusted, names ${hosts.join(', ') || host}, valid ${daysLeft} more days (${r.protocol}, ${r.cipher})`)];
}

/** Why an answer to an unauthenticated request is (or is not) a refusal. */
function judgeRefusal(a: HttpAnswer): { status: Status; text: string } {
  const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(a.body)?.[1];
  const said = `${a.status}${code ? ` ${code}` : ''}`;
  if (a.status === 401 || a.status === 403) return { status: 'PASS', text: `refused (${said})` };
  if (a.status >= 300 && a.status < 400) {
    const loc = String(a.headers.location ?? '');
    return /login|signin|sign-in|auth/i.test(loc) ? { status: 'PASS', text: `sent to log in (${a.status} ${loc})` } : { status: 'FAIL', text: `redirected to ${loc || '(nowhere)'} with ${a.status}: the upstream answered` };
  }
  if (a.status >= 200 && a.status < 300) return { status: 'FAIL', text: `answered ${said}: served without credentials` };
  // The gateway only says 502/504 after forwarding: the request reached the upstream.
  if (a.status === 502 || a.status === 504) return { status: 'FAIL', text: `answered ${said}: the request was forwarded to the upstream` };
  return { status: 'WARN', text: `answered ${said}, not 401/403` };
}

const FORGED_HS256 = (() => {
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'doctor', roles: ['admin'], exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${head}.${createHmac('sha256', 'secret').update(head).digest('base64url')}`;
})();
const ALG_NONE = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"doctor","roles":["admin"]}').toString('base64url')}.`;

/** Each authenticated route refuses an anonymous request, and JWT routes refuse forged tokens. */
export async function routesRefuseAnonymousCheck(lc: LiveContext): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const publicRoutes = lc.routes.filter((r) => r.auth === 'none').map((r) => r.name);
  for (const route of lc.routes) {
    if (route.auth === 'none' || route.auth === 'whatsapp') continue;
    const host = route.host ?? primaryHost(lc);
    const path = route.path ?? '/';
    const probes: { what: string; headers: Record<string, string> }[] = [{ what: 'anonymous request', headers: {} }];
    if (route.auth === 'jwt' || route.auth === 'jwt-or-session') {
      probes.push({ what: 'token signed with "secret"', headers: { authorization: `Bearer ${FORGED_HS256}` } });
      probes.push({ what: 'alg:none token', headers: { authorization: `Bearer ${ALG_NONE}` } });
    }
    for (const p of probes) {
      const a = await request(routeTarget(lc, host), { path, headers: { accept: 'application/json', ...p.headers }, timeoutMs: lc.timeoutMs });
      if ('error' in a) {
        out.push({ id: 'live-route-auth', status: 'FAIL', message: `${a.error}: ${route.name} (https://${host}${path}): ${p.what}: no answer` });
        continue;
      }
      lc.answers.push({ what: `${route.name} ${p.what}`, answer: a });
      const v = judgeRefusal(a);
      if (v.status !== 'PASS') out.push({ id: 'live-route-auth', status: v.status, message: `${route.name} (https://${host}${path}): ${p.what} ${v.text}`, fix: v.status === 'FAIL' ? `check route ${route.name}'s auth in the config and what is in front of the gateway` : undefined });
    }
  }
  const guarded = lc.routes.filter((r) => r.auth !== 'none' && r.auth !== 'whatsapp').length;
  if (out.length === 0 && guarded > 0) out.push(pass('live-route-auth', `${guarded} authenticated routes refuse anonymous requests${lc.routes.some((r) => r.auth === 'jwt' || r.auth === 'jwt-or-session') ? ' and forged tokens' : ''}`));
  if (publicRoutes.length > 0) out.push(pass('live-route-auth', `public by design (auth: none): ${publicRoutes.join(', ')}`));
  return out;
}

/** The webhook refuses unsigned and wrongly signed POSTs, and a verification with a wrong token. */
export async function webhookCheck(lc: LiveContext): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const hooks = lc.routes.filter((r) => r.auth === 'whatsapp');
  for (const route of hooks) {
    const host = route.host ?? primaryHost(lc);
    const path = route.path ?? '/';
    const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [] });
    const json = { 'content-type': 'application/json', accept: 'application/json' };
    const probes = [
      { what: 'unsigned POST', method: 'POST', path, headers: json, body },
      { what: 'POST with a wrong signature', method: 'POST', path, headers: { ...json, 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }, body },
      { what: 'verification with a wrong token', method: 'GET', path: `${path}?hub.mode=subscribe&hub.verify_token=doctor-wrong-token&hub.challenge=1158201444`, headers: { accept: 'application/json' }, body: undefined },
    ];
    for (const p of probes) {
      const a = await request(routeTarget(lc, host), { method: p.method, path: p.path, headers: p.headers, ...(p.body !== undefined ? { body: p.body } : {}), timeoutMs: lc.timeoutMs });
      if ('error' in a) {
        out.push({ id: 'live-webhook', status: 'FAIL', message: `${a.error}: ${route.name}: ${p.what}: no answer` });
        continue;
      }
      lc.answers.push({ what: `${route.name} ${p.what}`, answer: a });
      const v = a.body.includes('1158201444') ? { status: 'FAIL' as Status, text: 'echoed the challenge' } : judgeRefusal(a);
      if (v.status !== 'PASS') out.push({ id: 'live-webhook', status: v.status, message: `${route.name} (https://${host}${path}): ${p.what} ${v.text}`, fix: v.status === 'FAIL' ? 'the webhook route must use auth: whatsapp with WHATSAPP_APP_SECRET set' : undefined });
    }
  }
  if (out.length === 0 && hooks.length > 0) out.push(pass('live-webhook', `${hooks.map((h) => h.name).join(', ')}: unsigned and wrongly signed POSTs refused, wrong verify token refused`));
  return out;
}

/** Every HTTPS answer seen carries HSTS of at least half a year. */
export async function liveHstsCheck(lc: LiveContext): Promise<CheckResult[]> {
  const host = primaryHost(lc);
  const root = await request(routeTarget(lc, host), { path: '/', headers: { accept: 'application/json' }, timeoutMs: lc.timeoutMs });
  if (!('error' in root)) lc.answers.push({ what: `https://${host}/`, answer: root });
  if (lc.answers.length === 0) return [{ id: 'live-hsts', status: 'FAIL', message: `${'error' in root ? `${root.error}: ` : ''}no HTTPS answer to check` }];
  const bad = lc.answers.filter(({ answer }) => {
    const m = /max-age=(\d+)/i.exec(String(answer.headers['strict-transport-security'] ?? ''));
    return !m || Number(m[1]) < MIN_HSTS_SECONDS;
  });
  if (bad.length > 0) return [{ id: 'live-hsts', status: prodFail(lc), message: `${bad.length} of ${lc.answers.length} HTTPS answers lack HSTS of 180+ days (e.g. ${bad[0]?.what})`, fix: 'tls.hstsMaxAge: 31536000 (and nothing in front stripping the header)' }];
  return [pass('live-hsts', `HSTS on all ${lc.answers.length} HTTPS answers (${String(lc.answers[0]?.answer.headers['strict-transport-security'])})`)];
}

/** Plain HTTP redirects to HTTPS on the same host (or is closed). */
export async function httpRedirectCheck(lc: LiveContext): Promise<CheckResult[]> {
  const host = primaryHost(lc);
  const port = Number(lc.httpUrl.port || 80);
  const a = await request({ host: lc.httpUrl.hostname.replace(/^\[|\]$/g, ''), port, servername: undefined, hostHeader: port === 80 ? host : `${host}:${port}` }, { path: '/doctor-probe', plain: true, timeoutMs: lc.timeoutMs });
  if ('error' in a) return [{ id: 'live-http-redirect', status: 'WARN', message: `${a.error}: nothing answers plain HTTP at ${lc.httpUrl.host}: fine if port 80 is closed on purpose, but browsers typing the bare name get no redirect`, fix: `publish the gateway’s HTTP port (${lc.gatewayPorts.http}) as 80` }];
  const loc = String(a.headers.location ?? '');
  if (a.status >= 300 && a.status < 400) {
    let target: URL | undefined;
    try {
      target = new URL(loc);
    } catch {
      target = undefined;
    }
    if (target?.protocol === 'https:' && target.hostname === host) return [pass('live-http-redirect', `http://${host}${port === 80 ? '' : `:${port}`}/ answers ${a.status} to ${loc}`)];
    return [{ id: 'live-http-redirect', status: 'FAIL', message: `plain HTTP answers ${a.status} to ${loc || '(no Location)'}, not to https://${host}`, fix: 'FORCE_HTTPS=true' }];
  }
  return [{ id: 'live-http-redirect', status: 'FAIL', message: `plain HTTP answers ${a.status} instead of redirecting to HTTPS`, fix: 'FORCE_HTTPS=true' }];
}

/**
 * From outside, only the gateway's ports answer: backends and the admin listener do not. A
 * port is closed only when the host was heard from (it refused, or the gateway's port answered
 * so silence is a firewall's drop); a probe that reached nothing proves nothing: UNKNOWN.
 */
export async function exposedPortsCheck(lc: LiveContext): Promise<CheckResult[]> {
  const closeFix = (p: number): string => `publish only the gateway's ports (${lc.gatewayPorts.https}, ${lc.gatewayPorts.http}) in docker-compose.yml and close port ${p} at the firewall`;
  if (lc.ports === undefined && lc.reach.local) {
    return [{ id: 'live-exposed-ports', status: 'WARN', message: `${lc.address} is this machine (${lc.reach.addresses.join(', ')}): probing from the gateway's own host, where backend ports answer whatever the firewall does to outside clients`, fix: 'run doctor --live from another host (or give --ports to probe anyway)' }];
  }
  const ports = lc.ports ?? [...lc.backendPorts.keys()];
  const named = (p: number): string => `port ${p}${lc.backendPorts.has(p) ? ` (${lc.backendPorts.get(p)})` : ''}`;
  const open: number[] = [];
  const refused: number[] = [];
  const silent: number[] = [];
  const failed: { port: number; code: string }[] = [];
  for (const port of ports) {
    const r = await probePort(lc.address, port, lc.timeoutMs);
    if (r.state === 'open') open.push(port);
    else if (r.state === 'refused') refused.push(port);
    else if (r.state === 'timeout') silent.push(port);
    else failed.push({ port, code: r.code });
  }
  const out: CheckResult[] = open.map((p) => ({ id: 'live-exposed-ports', status: 'FAIL' as Status, message: `${named(p)} accepts connections from here`, fix: closeFix(p) }));
  const hostHeard = lc.reach.connected || refused.length > 0 || open.length > 0;
  for (const f of failed) out.push({ id: 'live-exposed-ports', status: 'UNKNOWN', message: `${f.code}: ${named(f.port)} could not be probed` });
  if (silent.length > 0 && !hostHeard) out.push({ id: 'live-exposed-ports', status: 'UNKNOWN', message: `no answer from ${lc.address} on any port (${silent.join(', ')}, nor the gateway's ${lc.port}): closed ports and a host that is down look the same` });
  if (out.length > 0) return out;
  const closed = [...refused.map((p) => `${p} (refused)`), ...silent.map((p) => `${p} (no answer: dropped)`)];
  return [pass('live-exposed-ports', ports.length === 0 ? 'no ports given to probe' : `closed from here: ${closed.join(', ')}${lc.reach.local ? ` (probed from the gateway's own host, ${lc.address})` : ''}`)];
}

export const LIVE_CHECKS = [tlsVersionsCheck, liveCertificateCheck, routesRefuseAnonymousCheck, webhookCheck, liveHstsCheck, httpRedirectCheck, exposedPortsCheck];

/** The report id of each live check, for the UNKNOWN lines of checks that could not run. */
export const LIVE_CHECK_IDS: ReadonlyMap<(typeof LIVE_CHECKS)[number], string> = new Map([
  [tlsVersionsCheck, 'live-tls-versions'],
  [liveCertificateCheck, 'live-certificate'],
  [routesRefuseAnonymousCheck, 'live-route-auth'],
  [webhookCheck, 'live-webhook'],
  [liveHstsCheck, 'live-hsts'],
  [httpRedirectCheck, 'live-http-redirect'],
  [exposedPortsCheck, 'live-exposed-ports'],
]);
