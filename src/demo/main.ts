import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processEnv } from '../config/env.js';
import { main, exitOnStartupError } from '../main.js';
import { hashPassword } from '../auth/password.js';
import { startEchoUpstream } from './echo-upstream.js';
import { trustInstructions } from './trust.js';
import { DEFAULTS } from '../config/schema.js';
import { demoOidc } from './oidc-demo.js';

const DEMO_USER = 'demo';

/**
 * `npm run demo`: stand-in upstreams on the seed's ports (CRM API 8000, NocoDB 8080,
 * Metabase 3000) that echo back what reached them, then the gateway in front of them, with a
 * throw-away signing key and a demo login when none are configured.
 */
async function demo(): Promise<void> {
  const base = processEnv();
  const dataDir = base.DATA_DIR || mkdtempSync(join(tmpdir(), 'crm-gateway-demo-'));
  const env: Record<string, string | undefined> = { ...base, API_SECRET_KEY: base.API_SECRET_KEY || randomBytes(32).toString('hex'), DATA_DIR: dataDir };
  // `npm run demo -- --oidc`: a local OpenID Provider too (oidc-provider, a devDependency, loaded only then).
  const oidc = process.argv.includes('--oidc') ? demoOidc(base, DEFAULTS) : undefined;
  if (oidc) Object.assign(env, oidc.env);
  const upstreams = await Promise.all([
    startEchoUpstream('crm-api (stand-in)', 8000),
    startEchoUpstream('nocodb (stand-in)', 8080),
    startEchoUpstream('metabase (stand-in)', 3000),
  ]);
  const running = await main(env);
  const provider = await oidc?.start();
  const auth = running.gateway.auth;
  const password = randomBytes(9).toString('base64url');
  let token = '(no auth service)';
  let secondFactor = '';
  if (auth) {
    if (!(await auth.store.getUser(DEMO_USER))) {
      await auth.store.addUser({ name: DEMO_USER, passwordHash: await hashPassword(password), roles: ['staff', 'admin'], disabled: false, createdAt: new Date() });
    } else {
      await auth.store.updateUser(DEMO_USER, { passwordHash: await hashPassword(password) });
    }
    // The demo user is an admin, and admins need a second factor (auth.mfa.requiredRoles): a
    // fresh TOTP key each run, printed below with the current code (src/auth/mfa/).
    const { newTotpSecret, totpUri, totpCode } = await import('../auth/mfa/totp.js');
    const { hashRecoveryCode, newRecoveryCodes } = await import('../auth/mfa/recovery.js');
    const secret = newTotpSecret();
    const codes = newRecoveryCodes();
    await auth.factors.reset(DEMO_USER);
    await auth.factors.enrolTotp(DEMO_USER, auth.sealer.seal(secret, DEMO_USER), codes.map((c) => hashRecoveryCode(DEMO_USER, c) as string));
    secondFactor = `  second factor for ${DEMO_USER}: TOTP key ${secret} (code now: ${totpCode(secret)}; a recovery code: ${codes[0] ?? ''})\n    ${totpUri(secret, DEMO_USER)}\n`;
    await auth.store.addClient({ name: 'demo-client', secretHash: randomBytes(32).toString('hex'), roles: ['api'], disabled: false, createdAt: new Date() }).catch(() => undefined);
    token = auth.tokens.issue({ sub: 'client:demo-client', roles: ['api'], ttlMs: 60 * 60_000, typ: 'access' }).token;
  }
  const domain = base.GATEWAY_DOMAIN || 'localhost';
  const port = running.ports.https;
  const trust = trustInstructions(base.TLS_CERT_FILE || DEFAULTS.certFile, running.certificates.current);
  const curl = trust.curlTrust ? `curl ${trust.curlTrust}` : 'curl';
  process.stderr.write(`
crm-gateway demo is running (${trust.summary}).
${trust.steps}
  https://nocodb.${domain}:${port}/        NocoDB (stand-in): log in as  ${DEMO_USER} / ${password}
  https://metabase.${domain}:${port}/      Metabase (stand-in): no second login; the sign-in on NocoDB's host covers it (one login)
  https://nocodb.${domain}:${port}/auth/sessions   your sessions (sign out one, or every other); one logout ends them on every host
${secondFactor}  https://api.${domain}:${port}/public/hello   CRM API public route (no login)
  https://api.${domain}:${port}/          CRM API: needs a bearer token (401 without)
  http://api.${domain}:${running.ports.http}/public/hello     plain HTTP: 308 to HTTPS
  http://127.0.0.1:${running.ports.admin}/readyz          health (loopback only)
  https://api.${domain}:${port}/.well-known/crm-gateway/jwks.json   keys of the signed X-Gateway-Assertion (docs/applications.md)
${oidc ? oidc.lines() : ''}
Each stand-in answers with the request it received, so you see what passed the gateway:
the headers it set (X-Gateway-User, X-Gateway-Assertion, X-Forwarded-For, X-Request-Id) and what it removed.

  ${curl} -H 'Authorization: Bearer ${token}' https://api.${domain}:${port}/customers
  ${curl} 'https://api.${domain}:${port}/public/..%2fadmin'      # refused: 400 PATH_REJECTED

Stop with Ctrl-C.
`);
  const stop = (): void => {
    void Promise.all([...upstreams.map((u) => u.close()), provider?.close()]);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

demo().catch(exitOnStartupError);
