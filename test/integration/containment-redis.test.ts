import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { httpsRequest, testCertificate, type TestCertificate } from '../helpers/harness.js';
import { RedisServerProcess, listKeys } from '../helpers/redis.js';
import { claimsFor, randomSecret, ringToken } from '../helpers/auth-gateway.js';
import { logLines, request, startGatewayProcess, type GatewayProcess, type PlainResponse } from '../helpers/gateway-process.js';
import { SessionClient, setCookieLine } from '../helpers/session-client.js';
import { ACCESS_COOKIE } from '../../src/auth/cookies.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 16, items 1 and 2, on the real thing: two gateway processes (`crm-gateway start`, the
 * built CLI) sharing a Redis of the test's own (a block of 127.0.0.1 in the machine's shared
 * Redis would refuse every other test run), blocks made by the real CLI, a real echo upstream
 * that must receive nothing of what is refused.
 */

const ROUTES = (upstream: string): string => `routes:
  - name: api
    host: api.test.local
    upstream: ${upstream}
    auth: none
  - name: secure
    host: secure.test.local
    upstream: ${upstream}
    auth: jwt
    roles: [api]
  - name: shop
    host: shop.test.local
    upstream: ${upstream}
    auth: none
containment:
  neverBlock: ['10.0.0.0/8']
  rules:
    - { on: failed_logins_ip, block: ip, for: 10m, maxPerMinute: 5 }
alerts:
  failedLogins: { perIp: 3, window: 5m }
`;

/** The address the test uses as a trusted proxy (TRUSTED_PROXIES); it connects from there. */
const PROXY = '127.0.0.2';

let redis: RedisServerProcess;
let admin: Redis;
let upstream: EchoUpstream;
let cert: TestCertificate;
let ca: string;
let work: string;
let env: Record<string, string>;
let a: GatewayProcess;
let b: GatewayProcess;
const secret = randomSecret();

function instanceEnv(name: string): Record<string, string> {
  return { ...env, LOG_DIR: join(work, `logs-${name}`) };
}

before(async () => {
  redis = await RedisServerProcess.start();
  admin = new Redis(redis.url, { lazyConnect: true });
  await admin.connect();
  upstream = await startEchoUpstream('containment-upstream');
  cert = await testCertificate();
  ca = readFileSync(cert.cert, 'utf8');
  work = mkdtempSync(join(tmpdir(), 'crm-gw-containment-'));
  writeFileSync(join(work, 'gateway.yaml'), ROUTES(upstream.url));
  env = {
    GATEWAY_CONFIG: join(work, 'gateway.yaml'),
    REDIS_URL: redis.url,
    API_SECRET_KEY: secret,
    DATA_DIR: join(work, 'data'),
    TRUSTED_PROXIES: PROXY,
  };
  // A user for the user block: the same embedded users file serves both instances.
  const added = await runCli(['users', 'add', 'alice', '--roles', 'api'], { ...env, LOG_DIR: join(work, 'logs-cli') }, 'correct horse battery staple 42\ncorrect horse battery staple 42\n');
  assert.equal(added.code, 0, added.stderr);
  [a, b] = await Promise.all([startGatewayProcess(cert, instanceEnv('a')), startGatewayProcess(cert, instanceEnv('b'))]);
});

after(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  admin?.disconnect();
  await redis?.stop();
  await upstream?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const cli = (args: string[]): Promise<CliResult> => runCli(args, { ...env, LOG_DIR: join(work, 'logs-cli') });

/** Lifts the block when the test ends, passed or not, so one failure does not fail the next tests. */
function liftAfter(t: TestContext, kind: string, target: string): void {
  t.after(async () => {
    await cli(['unblock', kind, target]);
  });
}

const get = (g: GatewayProcess, host = 'api.test.local', headers: Record<string, string> = {}, localAddress?: string): Promise<PlainResponse> =>
  request(g.port, ca, { host, path: '/containment', headers: { accept: 'application/json', ...headers }, ...(localAddress ? { localAddress } : {}) });

const code = (r: PlainResponse): string | undefined => {
  try {
    return r.json<{ error?: { code?: string } }>().error?.code;
  } catch {
    return undefined;
  }
};

/** Polls until the gateway answers `status` (the first such answer), returning it and how long it took. */
async function until(g: GatewayProcess, status: number, send: () => Promise<PlainResponse> = () => get(g), timeoutMs = 5_000): Promise<{ res: PlainResponse; ms: number }> {
  const start = performance.now();
  let res: PlainResponse | undefined;
  await waitFor(
    async () => {
      res = await send();
      return res.status === status;
    },
    `status ${status} from port ${g.port}`,
    timeoutMs,
    5,
  );
  return { res: res as PlainResponse, ms: performance.now() - start };
}

test('block ip through the CLI: both instances refuse within a second with 403 CLIENT_BLOCKED, the upstream receives nothing; unblock serves again', async (t) => {
  liftAfter(t, 'ip', '127.0.0.1');
  assert.equal((await get(a)).status, 200);
  assert.equal((await get(b)).status, 200);
  // Instance b is polled while the command runs: its first refusal, against the moment the CLI
  // made the block (`createdAt`, just before the store's transaction), is the propagation time.
  let polling = true;
  let firstRefusedAt: number | undefined;
  const poller = (async () => {
    while (polling && firstRefusedAt === undefined) {
      if ((await get(b)).status === 403) firstRefusedAt = Date.now();
    }
  })();
  const cliStart = performance.now();
  const blocked = await cli(['block', 'ip', '127.0.0.1', '--for', '1m', '--reason', 'incident 42: credential stuffing']);
  const cliEnd = performance.now();
  assert.equal(blocked.code, 0, blocked.stderr);
  await waitFor(() => firstRefusedAt !== undefined, 'the poller to see the refusal', 2_000);
  polling = false;
  await poller;
  // Time from the command's exit (the block is stored and announced) to the refusal on the second instance.
  const onB = await until(b, 403);
  const onA = await until(a, 403);
  const seen = upstream.seen.length;
  assert.equal(code(onB.res), 'CLIENT_BLOCKED');
  assert.equal(code(onA.res), 'CLIENT_BLOCKED');
  assert.ok(onB.ms < 1_000, `refused on the second instance ${onB.ms.toFixed(0)} ms after the CLI exited`);
  const createdAt = Date.parse(String(blocked.events.find((e) => e.event === 'containment.blocked')?.createdAt));
  const propagation = (firstRefusedAt ?? 0) - createdAt;
  assert.ok(propagation < 1_000, `b refused ${propagation} ms after the block was made`);
  process.stderr.write(`# containment: CLI ran ${(cliEnd - cliStart).toFixed(0)} ms; b's first refusal ${propagation} ms after the CLI made the block (poll granularity: one HTTPS request); after the CLI exited: b ${onB.ms.toFixed(1)} ms, a ${onA.ms.toFixed(1)} ms (first poll)\n`);
  // A browser gets the page in its language; the websocket handshake is refused as well.
  const page = await request(b.port, ca, { host: 'api.test.local', path: '/', headers: { accept: 'text/html', 'accept-language': 'es' } });
  assert.equal(page.status, 403);
  assert.match(page.body, /bloqueado/);
  assert.equal(upstream.seen.length, seen, 'the upstream received nothing while blocked');

  // The audit record: who (the OS user), what, why, until.
  const event = blocked.events.find((e) => e.event === 'containment.blocked');
  assert.ok(event, 'containment.blocked in the CLI audit log');
  assert.equal(typeof event.actor, 'string');
  assert.ok(String(event.actor).length > 0);
  assert.equal(event.kind, 'ip');
  assert.equal(event.target, '127.0.0.1');
  assert.equal(event.reason, 'incident 42: credential stuffing');
  assert.ok(Date.parse(String(event.until)) > Date.now() + 50_000);

  // Each refusal is in the instance's access log with its code.
  await waitFor(() => logLines(join(work, 'logs-b'), 'access').some((l) => l.code === 'CLIENT_BLOCKED' && l.status === 403), 'CLIENT_BLOCKED in the access log of instance b');

  const list = await cli(['block', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  const listed = JSON.parse(list.stdout) as Record<string, unknown>[];
  assert.deepEqual(
    listed.map((x) => [x.kind, x.target, x.source, x.by, x.reason]),
    [['ip', '127.0.0.1', 'manual', event.actor, 'incident 42: credential stuffing']],
  );

  // A restart keeps the block (it is read back from Redis before the instance counts as live).
  await b.stop();
  b = await startGatewayProcess(cert, instanceEnv('b'));
  const after = await get(b);
  assert.equal(after.status, 403);
  assert.equal(code(after), 'CLIENT_BLOCKED');

  const lifted = await cli(['unblock', 'ip', '127.0.0.1', '--reason', 'incident 42 closed']);
  assert.equal(lifted.code, 0, lifted.stderr);
  const servedB = await until(b, 200);
  await until(a, 200);
  assert.ok(servedB.ms < 1_000, `served again ${servedB.ms.toFixed(0)} ms after unblock`);
  const unevent = lifted.events.find((e) => e.event === 'containment.unblocked');
  assert.equal(unevent?.target, '127.0.0.1');
  assert.equal(unevent?.existed, true);
});

test('a block ends by itself when its time is up, without a command, and leaves nothing stored', async (t) => {
  liftAfter(t, 'cidr', '127.0.0.0/24');
  const blocked = await cli(['block', 'cidr', '127.0.0.0/24', '--for', '2s', '--reason', 'short test block']);
  assert.equal(blocked.code, 0, blocked.stderr);
  assert.equal(code((await until(a, 403)).res), 'CLIENT_BLOCKED');
  assert.equal(code((await until(b, 403)).res), 'CLIENT_BLOCKED');
  await until(a, 200, undefined, 5_000);
  await until(b, 200, undefined, 5_000);
  // The key's TTL ends at the same instant as the block; Redis reclaims an expired key lazily
  // (on access or its sampling cycle), so within a moment rather than at once.
  await waitFor(async () => (await listKeys(admin, 'crmgw:block:*')).length === 0, 'the expired block key is gone', 2_000);
  assert.deepEqual(JSON.parse((await cli(['block', 'list', '--json'])).stdout), []);
});

test('a user block refuses the user with 403 ACCOUNT_BLOCKED on every instance and closes their open websocket at once', async (t) => {
  liftAfter(t, 'user', 'alice');
  const token = ringToken(secret, claimsFor('alice'));
  const ws = new WebSocket(`wss://127.0.0.1:${a.port}/ws`, { headers: { host: 'secure.test.local', authorization: `Bearer ${token}` }, ca, servername: 'secure.test.local' } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
  });
  const closed = new Promise<{ code: number; reason: string; at: number }>((r) => ws.once('close', (c, reason) => r({ code: c, reason: reason.toString(), at: performance.now() })));
  const bearer = { authorization: `Bearer ${token}` };
  assert.equal((await get(b, 'secure.test.local', bearer)).status, 200);
  const start = performance.now();
  const blocked = await cli(['block', 'user', 'alice', '--for', '10m', '--reason', 'laptop stolen']);
  assert.equal(blocked.code, 0, blocked.stderr);
  const close = await closed;
  assert.equal(close.code, 1008);
  assert.equal(close.reason, 'ACCOUNT_BLOCKED');
  process.stderr.write(`# containment: websocket closed ${(close.at - start).toFixed(0)} ms after the CLI started\n`);
  const seen = upstream.seen.length;
  const refused = await get(b, 'secure.test.local', bearer);
  assert.equal(refused.status, 403);
  assert.equal(code(refused), 'ACCOUNT_BLOCKED');
  assert.equal(upstream.seen.length, seen);
  // Nor does a sign-in open a new session while blocked (said only to whoever has the password).
  const browser = new SessionClient({ request: (r) => httpsRequest(b.port, ca, r) }, 'api.test.local');
  const form = await browser.openLogin();
  const signIn = await browser.postLogin({ csrf: form.csrf, rd: form.rd, username: 'alice', password: 'correct horse battery staple 42' }, { 'accept-language': 'en' });
  assert.equal(signIn.status, 403, signIn.body.slice(0, 300));
  assert.match(signIn.body, /This account is blocked/);
  assert.equal(setCookieLine(signIn, ACCESS_COOKIE), undefined, 'no session cookie');
  // Others pass: the block is alice's alone.
  assert.equal((await get(b)).status, 200);
  await waitFor(() => logLines(join(work, 'logs-a'), 'security').some((l) => l.event === 'websocket.closed' && l.reason === 'ACCOUNT_BLOCKED'), 'websocket.closed in the security log');
  assert.equal((await cli(['unblock', 'user', 'alice'])).code, 0);
  await until(b, 200, () => get(b, 'secure.test.local', bearer));
});

test('a route block: 503 maintenance page for browsers (Spanish and English), JSON for API clients, Retry-After until it ends; other routes serve', async (t) => {
  liftAfter(t, 'route', 'shop');
  const blocked = await cli(['block', 'route', 'shop', '--for', '10m', '--reason', 'database migration']);
  assert.equal(blocked.code, 0, blocked.stderr);
  const json = (await until(b, 503, () => get(b, 'shop.test.local'))).res;
  const seen = upstream.seen.length;
  assert.equal(code(json), 'ROUTE_MAINTENANCE');
  const retry = Number(json.headers['retry-after']);
  assert.ok(retry > 590 && retry <= 600, `Retry-After ${String(json.headers['retry-after'])}`);
  const es = await request(a.port, ca, { host: 'shop.test.local', path: '/', headers: { accept: 'text/html', 'accept-language': 'es-ES' } });
  assert.equal(es.status, 503);
  assert.match(String(es.headers['content-type']), /text\/html/);
  assert.match(es.body, /mantenimiento/);
  assert.match(es.body, /ROUTE_MAINTENANCE/);
  assert.ok(Number(es.headers['retry-after']) > 590);
  const en = await request(a.port, ca, { host: 'shop.test.local', path: '/', headers: { accept: 'text/html', 'accept-language': 'en' } });
  assert.match(en.body, /closed for maintenance/);
  assert.match(en.body, /Try again in 10 min/);
  assert.equal(upstream.seen.length, seen, 'the upstream received nothing for the route under maintenance');
  assert.equal((await get(a, 'api.test.local')).status, 200);
  assert.equal((await cli(['unblock', 'route', 'shop'])).code, 0);
  await until(a, 200, () => get(a, 'shop.test.local'));
});

test('bad input is refused at the command with one line and exit 2, and nothing is stored', async () => {
  const cases: [string[], RegExp][] = [
    [['block', 'ip', '999.1.1.1', '--for', '1h', '--reason', 'x'], /not an IP address/],
    [['block', 'ip', '10.0.0.0/8', '--for', '1h', '--reason', 'x'], /not an IP address/],
    [['block', 'cidr', '0.0.0.0/4', '--for', '1h', '--reason', 'x'], /wider than \/8.*--force/],
    [['block', 'cidr', '2001:db8::/16', '--for', '1h', '--reason', 'x'], /wider than \/32/],
    [['block', 'cidr', '10.1.2.3/8', '--for', '1h', '--reason', 'x'], /host bits/],
    [['block', 'ip', '203.0.113.5', '--for', 'soon', '--reason', 'x'], /not a duration/],
    [['block', 'ip', '203.0.113.5', '--for', '91d', '--reason', 'x'], /longer than the longest block/],
    [['block', 'ip', '203.0.113.5', '--for', '60', '--reason', 'x'], /not a duration/],
    [['block', 'ip', '203.0.113.5', '--for', '1h', '--reason', '  '], /--reason is required/],
    [['block', 'ip', '203.0.113.5', '--for', '1h'], /--reason is required/],
    [['block', 'ip', '203.0.113.5', '--reason', 'x'], /--for is required/],
    [['block', 'route', 'nosuch', '--for', '1h', '--reason', 'x'], /no route named nosuch/],
    [['block', 'user', 'bad name', '--for', '1h', '--reason', 'x'], /not a user name/],
    [['block', 'ip', '203.0.113.5', '--for', '1h', '--reason', 'x', '--force'], /unknown option --force/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('crm-gateway: error: '));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? '', message);
    assert.ok(!r.events.some((e) => e.event === 'containment.blocked'));
  }
  assert.deepEqual(await listKeys(admin, 'crmgw:block:*'), []);
  // --force takes a wide network (then lifted).
  const wide = await cli(['block', 'cidr', '198.0.0.0/7', '--for', '1m', '--reason', 'forced wide block', '--force']);
  assert.equal(wide.code, 0, wide.stderr);
  assert.equal((await cli(['unblock', 'cidr', '198.0.0.0/7'])).code, 0);
  assert.deepEqual(await listKeys(admin, 'crmgw:block:*'), []);
});

// A new client name each time: the per-account lockout (5) must not answer 429 before the per-address alert (3).
let attempt = 0;
/** A failed client-credentials sign-in through the trusted proxy, as the client `xff` (the proxy itself without). */
const failLogin = (xff: string | undefined): Promise<PlainResponse> =>
  request(a.port, ca, {
    host: 'api.test.local',
    path: '/auth/token',
    method: 'POST',
    headers: {
      accept: 'application/json',
      authorization: `Basic ${Buffer.from(`nobody${++attempt}:wrong-secret`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      ...(xff ? { 'x-forwarded-for': xff } : {}),
    },
    body: 'grant_type=client_credentials',
    localAddress: PROXY,
  });
const fromProxy = (g: GatewayProcess, xff?: string, host = 'api.test.local'): Promise<PlainResponse> => get(g, host, xff ? { 'x-forwarded-for': xff } : {}, PROXY);

test('automatic containment: failed sign-ins block the forwarded address on every instance, never a trusted proxy or a neverBlock network', async (t) => {
  liftAfter(t, 'ip', '203.0.113.9');
  for (const xff of ['203.0.113.9', '10.1.2.3', undefined]) {
    for (let i = 0; i < 3; i++) assert.equal((await failLogin(xff)).status, 401, `failed sign-in ${i} from ${String(xff)}`);
  }
  // The attacker behind the proxy is blocked on both instances.
  assert.equal(code((await until(a, 403, () => fromProxy(a, '203.0.113.9'))).res), 'CLIENT_BLOCKED');
  assert.equal(code((await until(b, 403, () => fromProxy(b, '203.0.113.9'))).res), 'CLIENT_BLOCKED');
  // The neverBlock network and the proxy itself are not.
  await waitFor(() => logLines(join(work, 'logs-a'), 'security').filter((l) => l.event === 'containment.auto_skipped').length >= 2, 'two skipped automatic blocks');
  assert.equal((await fromProxy(a, '10.1.2.3')).status, 200);
  assert.equal((await fromProxy(b)).status, 200);
  assert.equal((await get(b)).status, 200);
  const security = logLines(join(work, 'logs-a'), 'security');
  const skipped = security.filter((l) => l.event === 'containment.auto_skipped').map((l) => l.target);
  assert.deepEqual(skipped.sort(), ['10.1.2.3', PROXY]);
  const auto = security.find((l) => l.event === 'containment.blocked');
  assert.ok(auto, 'the automatic block is in the audit log');
  assert.equal(auto.actor, 'auto');
  assert.equal(auto.target, '203.0.113.9');
  assert.equal(auto.source, 'auto');
  assert.equal(auto.rule, 'failed_logins_ip -> ip for 10m');
  assert.equal(auto.alert, 'failed_logins_ip');
  const listed = JSON.parse((await cli(['block', 'list', '--json'])).stdout) as Record<string, unknown>[];
  assert.deepEqual(listed.map((x) => [x.kind, x.target, x.source, x.rule]), [['ip', '203.0.113.9', 'auto', 'failed_logins_ip -> ip for 10m']]);
  // The security overview of the other instance shows it (an admin's bearer token on the admin listener).
  const adminToken = ringToken(secret, claimsFor('alice', { roles: ['admin'] }));
  const overview = await fetch(`http://127.0.0.1:${b.adminPort}/security.json`, { headers: { authorization: `Bearer ${adminToken}` } });
  assert.equal(overview.status, 200);
  const shown = ((await overview.json()) as { blocks: Record<string, unknown>[] }).blocks;
  assert.deepEqual(shown.map((x) => [x.kind, x.target, x.source, x.rule]), [['ip', '203.0.113.9', 'auto', 'failed_logins_ip -> ip for 10m']]);
  const page = await (await fetch(`http://127.0.0.1:${b.adminPort}/security`, { headers: { authorization: `Bearer ${adminToken}` } })).text();
  assert.match(page, /data-block="ip:203\.0\.113\.9" data-source="auto"/);
  assert.equal((await cli(['unblock', 'ip', '203.0.113.9'])).code, 0);
});

test('regression: an IPv6 client rotating through its /64 is blocked as the /64 on every instance', async (t) => {
  liftAfter(t, 'cidr', '2001:db8:1:2::/64');
  for (let i = 1; i <= 3; i++) assert.equal((await failLogin(`2001:db8:1:2::${i}`)).status, 401, `failed sign-in from address ${i} of the /64`);
  assert.equal(code((await until(a, 403, () => fromProxy(a, '2001:db8:1:2:ffff::1'))).res), 'CLIENT_BLOCKED');
  assert.equal(code((await until(b, 403, () => fromProxy(b, '2001:db8:1:2::abcd'))).res), 'CLIENT_BLOCKED');
  assert.equal((await fromProxy(b, '2001:db8:1:3::1')).status, 200, 'the next /64 is not blocked');
  await waitFor(() => logLines(join(work, 'logs-a'), 'security').some((l) => l.event === 'containment.blocked' && l.target === '2001:db8:1:2::/64'), 'the automatic block in the audit log');
  const auto = logLines(join(work, 'logs-a'), 'security').find((l) => l.event === 'containment.blocked' && l.target === '2001:db8:1:2::/64');
  assert.equal(auto?.kind, 'cidr');
  assert.equal(auto?.reason, 'automatic: alert failed_logins_ip (3 within 5m) for cidr 2001:db8:1:2::/64');
  const alert = logLines(join(work, 'logs-a'), 'security').find((l) => l.event === 'alert.failed_logins_ip' && l.subject === '2001:db8:1:2::/64');
  assert.match(String(alert?.message), /^3 failed authentications from 2001:db8:1:2::\/64 within 5m$/);
  assert.equal((await cli(['unblock', 'cidr', '2001:db8:1:2::/64'])).code, 0);
  await until(b, 200, () => fromProxy(b, '2001:db8:1:2::abcd'));
});

test('regression: a forged announcement on crmgw:blocks (anyone who can PUBLISH) neither blocks anyone nor lifts a block', async (t) => {
  liftAfter(t, 'ip', '127.0.0.1');
  liftAfter(t, 'route', 'shop');
  const now = Date.now();
  const forged = (target: string, kind = 'cidr') => ({ kind, target, reason: 'forged', until: now + 60_000, createdAt: now, by: 'mallory', source: 'manual' });
  await admin.publish('crmgw:blocks', JSON.stringify({ op: 'add', block: forged('0.0.0.0/0') }));
  await admin.publish('crmgw:blocks', JSON.stringify({ op: 'add', kind: 'cidr', target: '127.0.0.0/8', block: forged('127.0.0.0/8') }));
  // A real block announced after them: once both instances apply it, they have handled the forged ones.
  assert.equal((await cli(['block', 'route', 'shop', '--for', '1m', '--reason', 'marker'])).code, 0);
  await until(a, 503, () => get(a, 'shop.test.local'));
  await until(b, 503, () => get(b, 'shop.test.local'));
  assert.equal((await get(a)).status, 200, 'no invisible block of everyone');
  assert.equal((await get(b)).status, 200);
  assert.deepEqual(JSON.parse((await cli(['block', 'list', '--json'])).stdout).map((x: { target: string }) => x.target), ['shop']);

  const blocked = await cli(['block', 'ip', '127.0.0.1', '--for', '1m', '--reason', 'real block']);
  assert.equal(blocked.code, 0, blocked.stderr);
  await until(a, 403);
  await until(b, 403);
  await admin.publish('crmgw:blocks', JSON.stringify({ op: 'remove', kind: 'ip', target: '127.0.0.1' }));
  // The marker again, seen from the proxy's address (not blocked): the route opens after the forged unblock was handled.
  assert.equal((await cli(['unblock', 'route', 'shop'])).code, 0);
  await until(a, 200, () => fromProxy(a, undefined, 'shop.test.local'));
  await until(b, 200, () => fromProxy(b, undefined, 'shop.test.local'));
  assert.equal(code(await get(a)), 'CLIENT_BLOCKED', 'no silent unblock');
  assert.equal(code(await get(b)), 'CLIENT_BLOCKED');
});
