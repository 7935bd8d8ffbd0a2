import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificate, testConfig } from '../helpers/harness.js';
import { startTestAudit, type TestAudit } from '../helpers/audit.js';
import { addUser, randomSecret } from '../helpers/auth-gateway.js';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { createAdminAuth } from '../../src/auth/admin-auth.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { newTotpSecret, totpCode } from '../../src/auth/mfa/totp.js';
import { hashRecoveryCode, newRecoveryCodes } from '../../src/auth/mfa/recovery.js';
import { errorMessage } from '../../src/i18n/messages.js';
import { escapeHtml } from '../../src/auth/pages.js';
import type { ErrorCode } from '../../src/errors.js';

/** The sign-in form shows a refusal by its message (the page's default language, Spanish). */
const shows = (body: string, code: ErrorCode): boolean => body.includes(escapeHtml(errorMessage('es', code)));

// Issue 14, item 2: the security overview's own sign-in (/security/login, admin listener) asks
// admins for their second factor in the same form, and refuses an admin without one (the default
// auth.mfa.requiredRoles is [admin]).

const PASSWORD = 'overview second factor password';
let audit: TestAudit;
let upstream: EchoUpstream;
let auth: AuthService;
let running: RunningGateway;
let dataDir: string;
let adminUrl: string;

before(async () => {
  audit = await startTestAudit();
  upstream = await startEchoUpstream('mfa-overview-upstream');
  dataDir = mkdtempSync(join(tmpdir(), 'crm-gw-mfa-overview-'));
  const cert = await testCertificate();
  const config = testConfig('  - name: app\n    host: app.test.local\n    upstream: UPSTREAM\n    auth: session\n', upstream.url, cert, { API_SECRET_KEY: randomSecret(), DATA_DIR: dataDir, LOG_DIR: audit.dir });
  const made = await createAuthService(config, { log: audit.log, redis: undefined, postgres: undefined });
  assert.ok(made);
  auth = made;
  running = await startGateway(config, { log: audit.log, auth, adminAuth: createAdminAuth(auth), securityOverview: audit.log.overview });
  adminUrl = `http://127.0.0.1:${running.ports.admin}`;
});

after(async () => {
  await running?.shutdown();
  await auth?.close();
  await upstream?.close();
  await audit?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function adminRequest(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: running.ports.admin, path, method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function signIn(username: string, code?: string): Promise<{ status: number; body: string; session: string | undefined }> {
  const form = await adminRequest('/security/login');
  assert.match(form.body, /<input id="code" name="code"/, 'the form has the second-factor field');
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1] as string;
  const formCookie = (form.headers['set-cookie'] ?? []).find((c) => c.startsWith('crmgw_admin_csrf='))?.split(';')[0] as string;
  const posted = await adminRequest('/security/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: formCookie, origin: adminUrl, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ csrf, rd: '/security', username, password: PASSWORD, ...(code === undefined ? {} : { code }) }).toString(),
  });
  return { status: posted.status, body: posted.body, session: (posted.headers['set-cookie'] ?? []).find((c) => c.startsWith('crmgw_admin='))?.split(';')[0] };
}

test('an admin without a second factor is refused (MFA_REQUIRED), no overview session', async () => {
  await addUser(auth, 'bare-admin', PASSWORD, ['admin']);
  const r = await signIn('bare-admin');
  assert.equal(r.status, 403);
  assert.ok(shows(r.body, 'MFA_REQUIRED'));
  assert.equal(r.session, undefined);
});

test('an admin with TOTP: no code or a wrong one refused (MFA_INVALID), the right one signs in, the same one again is MFA_REPLAYED; a recovery code works once', async () => {
  await addUser(auth, 'totp-admin', PASSWORD, ['admin']);
  const secret = newTotpSecret();
  const codes = newRecoveryCodes();
  await auth.factors.enrolTotp('totp-admin', auth.sealer.seal(secret, 'totp-admin'), codes.map((c) => hashRecoveryCode('totp-admin', c) as string));
  const none = await signIn('totp-admin');
  assert.equal(none.status, 401);
  assert.ok(shows(none.body, 'MFA_INVALID'));
  assert.equal(none.session, undefined);
  const code = totpCode(secret);
  const wrong = await signIn('totp-admin', code === '000000' ? '000001' : '000000');
  assert.equal(wrong.status, 401);
  assert.equal(wrong.session, undefined);
  const ok = await signIn('totp-admin', code);
  assert.equal(ok.status, 303, ok.body);
  assert.ok(ok.session, 'overview session');
  const replay = await signIn('totp-admin', code);
  assert.equal(replay.status, 401);
  assert.ok(shows(replay.body, 'MFA_REPLAYED'));
  assert.equal(replay.session, undefined);
  const recovery = await signIn('totp-admin', codes[1] as string);
  assert.equal(recovery.status, 303);
  const again = await signIn('totp-admin', codes[1] as string);
  assert.equal(again.status, 401);
  assert.equal(again.session, undefined);
});
