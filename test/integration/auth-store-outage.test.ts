import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { parseConfig } from '../../src/config/load.js';
import { createAuthService } from '../../src/auth/service.js';
import { hashPassword } from '../../src/auth/password.js';
import { createPostgres } from '../../src/stores/postgres.js';
import { createRedis } from '../../src/stores/redis.js';
import { startGateway } from '../../src/server/start.js';
import { createAdminAuth } from '../../src/auth/admin-auth.js';
import { startEchoUpstream } from '../../src/demo/echo-upstream.js';
import { alertsConfig, startTestAudit } from '../helpers/audit.js';
import { httpsRequest, testCertificate, testEnv, type RequestOptions } from '../helpers/harness.js';
import { RedisServerProcess, waitFor } from '../helpers/redis.js';
import { SessionClient } from '../helpers/session-client.js';
import { OwnPostgres, OWN_POSTGRES_SKIP } from '../helpers/own-postgres.js';

/**
 * Issue 18, item 5: an account store that does not answer is an outage, not bad credentials.
 * A valid token or session is refused 503 AUTH_STORE_UNAVAILABLE with Retry-After; nothing
 * counts it as a failed authentication (no `auth.login_failed`, no lockout, no
 * `failed_logins_ip` alert), it spends nothing of the address's rate-limit budget, and the
 * outage and the return are security events (`store.postgres_lost`, `store.postgres_connected`).
 * PostgreSQL is a cluster of the test's own, stopped and started; the shared one is untouched.
 */

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    rateLimit: { window: 1m, max: 5, by: user }
  - name: app
    host: app.test.local
    upstream: UPSTREAM
    auth: session
`;
/** Far below the requests the outage sees: any counting of them as failures would alert. */
const ALERTS = 'alerts:\n  failedLogins: { perIp: 3, perUser: 3 }\n';

function lines(dir: string, stream: string): Record<string, unknown>[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith(`${stream}-`) && n.endsWith('.log'))
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('PostgreSQL down: valid tokens, sessions and sign-ins get 503 AUTH_STORE_UNAVAILABLE, never counted as failures; its return is reported and serving resumes', { skip: OWN_POSTGRES_SKIP, timeout: 90_000 }, async (t) => {
  const pgsql = await OwnPostgres.create();
  t.after(() => pgsql.remove());
  pgsql.start();
  const cert = await testCertificate();
  const upstream = await startEchoUpstream('store-outage');
  t.after(() => upstream.close());
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-store-outage-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const config = parseConfig(`${ALERTS}routes:${ROUTES.replaceAll('UPSTREAM', upstream.url)}`, {
    ...testEnv(cert),
    API_SECRET_KEY: 'c'.repeat(64),
    DATA_DIR: join(work, 'data'),
    DATABASE_URL: pgsql.url,
  });
  const audit = await startTestAudit({ alerts: alertsConfig(ALERTS) });
  t.after(() => audit.close());
  const postgres = (await createPostgres(config, audit.log)) as pg.Pool;
  t.after(() => postgres.end());
  const auth = await createAuthService(config, { log: audit.log, postgres });
  assert.ok(auth);
  t.after(() => auth.close());
  const running = await startGateway(config, { log: audit.log, postgres, auth, adminAuth: createAdminAuth(auth), securityOverview: audit.log.overview });
  t.after(() => running.shutdown());
  const ca = readFileSync(cert.cert, 'utf8');
  const gw = { request: (r: RequestOptions) => httpsRequest(running.ports.https, ca, r) };

  await auth.store.addClient({ name: 'loader', secretHash: 'x'.repeat(64), roles: ['api'], disabled: false, createdAt: new Date() });
  await auth.store.addUser({ name: 'alice', passwordHash: await hashPassword('correct horse battery'), roles: ['staff'], disabled: false, createdAt: new Date() });
  const token = auth.tokens.issue({ sub: 'client:loader', roles: ['api'], ttlMs: 600_000, typ: 'access' }).token;
  const bearer = { authorization: `Bearer ${token}`, accept: 'application/json' };
  // Signed in before the outage; the session's account state is not read until it is used.
  const browser = new SessionClient(gw, 'app.test.local');
  await browser.login('alice', 'correct horse battery');
  const signIn = new SessionClient(gw, 'app.test.local');
  const form = await signIn.openLogin();

  pgsql.stop();
  const stoppedAt = Date.now();
  // More refusals than the rate limit (5) and the failed-login alert (3) would allow.
  for (let i = 0; i < 12; i++) {
    const res = await gw.request({ path: `/api/outage/${i}`, headers: bearer });
    assert.equal(res.status, 503, res.body);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'AUTH_STORE_UNAVAILABLE');
    assert.equal(res.headers['retry-after'], '5');
    assert.equal(res.headers['www-authenticate'], undefined, 'a 503 asks for no other credentials');
  }
  assert.ok(Date.now() - stoppedAt < 10_000, 'refused at once, none hangs');
  assert.equal(upstream.seen.filter((s) => s.url.startsWith('/outage/')).length, 0, 'nothing reached the upstream');
  // The overview's bearer check on the admin listener tells the outage too, not "bad credentials".
  const overview = await fetch(`http://127.0.0.1:${running.ports.admin}/security.json`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(overview.status, 503);
  assert.equal(((await overview.json()) as { error: { code: string } }).error.code, 'AUTH_STORE_UNAVAILABLE');

  // A browser with a good session: a page that says so, and the session is kept.
  const page = await browser.send({ path: '/home', html: true });
  assert.equal(page.status, 503, page.body.slice(0, 300));
  assert.match(String(page.headers['content-type']), /text\/html/);
  assert.equal(page.headers['set-cookie'], undefined, 'the session is not cleared');
  assert.doesNotMatch(page.body, /Wrong user name or password/);

  // The sign-in form: not "wrong password", and no lockout counted.
  const posted = await signIn.postLogin({ csrf: form.csrf, rd: form.rd, username: 'alice', password: 'correct horse battery' });
  assert.equal(posted.status, 503, posted.body.slice(0, 300));
  assert.doesNotMatch(posted.body, /Wrong user name or password/);
  assert.match(posted.body, /AUTH_STORE_UNAVAILABLE/, 'the page names the outage');
  assert.equal(posted.headers['retry-after'], '5');

  pgsql.start();
  await waitFor(async () => (await gw.request({ path: '/api/back', headers: bearer })).status === 200, 20_000, 'serving again once PostgreSQL is back');
  // The address's budget was not spent by the outage: a by-user route still serves from it.
  assert.equal((await gw.request({ path: '/api/after', headers: bearer })).status, 200);
  assert.equal((await browser.send({ path: '/home', html: true })).status, 200, 'the kept session works again');
  assert.equal((await signIn.login('alice', 'correct horse battery')).status, 303);

  await audit.log.flush(5_000);
  const security = lines(audit.dir, 'security');
  const events = security.map((r) => String(r.event));
  assert.ok(events.includes('store.postgres_lost'), 'the outage is reported as such');
  assert.ok(events.indexOf('store.postgres_connected', events.indexOf('store.postgres_lost')) > 0, 'and its end');
  assert.equal(events.filter((e) => e === 'store.postgres_lost').length, 1, 'once per outage');
  for (const e of ['auth.login_failed', 'auth.lockout', 'auth.session_rejected']) assert.ok(!events.includes(e), `no ${e}`);
  assert.ok(!events.some((e) => e.startsWith('alert.failed_logins')), 'no brute-force alert');
  assert.doesNotMatch(audit.console(), /failed_logins/);
  const refusals = lines(audit.dir, 'access').filter((r) => r.code === 'AUTH_STORE_UNAVAILABLE');
  assert.equal(refusals.length, 14, 'every refusal in the access log under its own code');
  assert.ok(!lines(audit.dir, 'access').some((r) => r.code === 'RATE_LIMITED' || r.code === 'AUTH_INVALID'));
});

/** The PIDs of a cluster of our own: its postmaster and that one's children (never anyone else's). */
function clusterPids(pgsql: OwnPostgres): number[] {
  const postmaster = Number(readFileSync(join(pgsql.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return [postmaster, ...children];
}

test('PostgreSQL that hangs (its processes stopped): a lookup is given up after 2 s with 503 AUTH_STORE_UNAVAILABLE, and served once it answers', { skip: OWN_POSTGRES_SKIP, timeout: 60_000 }, async (t) => {
  const pgsql = await OwnPostgres.create();
  t.after(() => pgsql.remove());
  pgsql.start();
  const cert = await testCertificate();
  const upstream = await startEchoUpstream('store-hang');
  t.after(() => upstream.close());
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-store-hang-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const config = parseConfig(`routes:${ROUTES.replaceAll('UPSTREAM', upstream.url)}`, { ...testEnv(cert), API_SECRET_KEY: 'e'.repeat(64), DATA_DIR: join(work, 'data'), DATABASE_URL: pgsql.url });
  const audit = await startTestAudit();
  t.after(() => audit.close());
  const postgres = (await createPostgres(config, audit.log)) as pg.Pool;
  t.after(() => postgres.end());
  const auth = await createAuthService(config, { log: audit.log, postgres });
  assert.ok(auth);
  t.after(() => auth.close());
  const running = await startGateway(config, { log: audit.log, postgres, auth });
  t.after(() => running.shutdown());
  const ca = readFileSync(cert.cert, 'utf8');
  await auth.store.addClient({ name: 'hang', secretHash: 'x'.repeat(64), roles: ['api'], disabled: false, createdAt: new Date() });
  const token = auth.tokens.issue({ sub: 'client:hang', roles: ['api'], ttlMs: 600_000, typ: 'access' }).token;
  const ask = (path: string): ReturnType<typeof httpsRequest> => httpsRequest(running.ports.https, ca, { path, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });

  const pids = clusterPids(pgsql);
  const resume = (): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
  };
  t.after(resume);
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  const started = Date.now();
  const res = await ask('/api/hung');
  const tookMs = Date.now() - started;
  assert.equal(res.status, 503, res.body);
  assert.equal(res.json<{ error: { code: string } }>().error.code, 'AUTH_STORE_UNAVAILABLE');
  assert.ok(tookMs >= 1_900 && tookMs < 5_000, `given up after the lookup timeout, not hung (${tookMs} ms)`);
  resume();
  await waitFor(async () => (await ask('/api/back')).status === 200, 20_000, 'serving once PostgreSQL answers');
  await audit.log.flush(5_000);
  const events = lines(audit.dir, 'security').map((r) => String(r.event));
  assert.ok(events.includes('store.postgres_lost') && events.includes('store.postgres_connected'));
  t.diagnostic(`a hung PostgreSQL was given up after ${tookMs} ms`);
});

test('Redis down at startup: tokens get 503 AUTH_STORE_UNAVAILABLE until the revocations have been read, then 200', { timeout: 60_000 }, async (t) => {
  const server = await RedisServerProcess.start();
  await server.stop();
  const cert = await testCertificate();
  const upstream = await startEchoUpstream('redis-startup');
  t.after(() => upstream.close());
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-redis-startup-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const config = parseConfig(`${ALERTS}routes:${ROUTES.replaceAll('UPSTREAM', upstream.url)}`, {
    ...testEnv(cert),
    API_SECRET_KEY: 'd'.repeat(64),
    DATA_DIR: join(work, 'data'),
    REDIS_URL: server.url,
  });
  const audit = await startTestAudit({ alerts: alertsConfig(ALERTS) });
  t.after(() => audit.close());
  const redis = await createRedis(config, audit.log);
  assert.ok(redis);
  t.after(() => redis.disconnect());
  const auth = await createAuthService(config, { log: audit.log, redis });
  assert.ok(auth);
  t.after(() => auth.close());
  const running = await startGateway(config, { log: audit.log, redis, auth });
  t.after(() => running.shutdown());
  t.after(() => server.stop());
  const ca = readFileSync(cert.cert, 'utf8');
  await auth.store.addClient({ name: 'early', secretHash: 'x'.repeat(64), roles: ['api'], disabled: false, createdAt: new Date() });
  const token = auth.tokens.issue({ sub: 'client:early', roles: ['api'], ttlMs: 600_000, typ: 'access' }).token;
  const ask = (path: string): ReturnType<typeof httpsRequest> => httpsRequest(running.ports.https, ca, { path, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });

  for (let i = 0; i < 6; i++) {
    const res = await ask(`/api/early/${i}`);
    assert.equal(res.status, 503, res.body);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'AUTH_STORE_UNAVAILABLE');
    assert.equal(res.headers['retry-after'], '5');
  }
  assert.equal(upstream.seen.length, 0, 'nothing reached the upstream');

  await server.start();
  await waitFor(() => auth.revocations.live, 20_000, 'subscribed once Redis is up');
  assert.equal((await ask('/api/later')).status, 200);
  await audit.log.flush(5_000);
  const events = lines(audit.dir, 'security').map((r) => String(r.event));
  assert.ok(events.includes('store.redis_lost'), 'Redis down since startup is reported');
  assert.ok(events.indexOf('store.redis_connected', events.indexOf('store.redis_lost')) > 0, 'and its return');
  assert.ok(!events.some((e) => e === 'auth.login_failed' || e.startsWith('alert.failed_logins')));
});
