import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testCertificate } from '../helpers/harness.js';
import { freePort } from '../helpers/ports.js';
import { createTestDatabase, REDIS_URL } from '../helpers/auth-gateway.js';
import { notBuilt } from '../helpers/built.js';

// Issue 13, item 5 (memory): what only an unconfigured feature or another CLI command needs is
// loaded when used: pg and ioredis cost ~5 MB of RSS each. These start the built gateway with a recorder
// that lists every module it loaded: ESM resolutions through a module.register() hook, CommonJS
// through require.cache, written when the process exits.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'dist/main.js');
const BIN = join(ROOT, 'bin/crm-gateway.js');
const NOT_BUILT = notBuilt('dist/main.js');
const WAIT_MS = 15_000;

const HOOKS = `
import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(out, r.url + '\\n');
  return r;
}
`;
const PRELOAD = `
import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const out = process.env.CRM_GW_TEST_MODULE_RECORD;
register('./hooks.mjs', import.meta.url, { data: { out } });
const cache = createRequire(import.meta.url).cache;
process.once('exit', () => appendFileSync(out, Object.keys(cache).map((f) => pathToFileURL(f).href + '\\n').join('')));
`;

/** What no gateway without REDIS_URL, DATABASE_URL, BACKUP_ENABLED and a missing certificate loads. */
const NEVER = [/\/node_modules\/ioredis\//, /\/node_modules\/pg\//, /\/node_modules\/pg-pool\//, /\/node_modules\/@aws-sdk\//, /\/node_modules\/selfsigned\//, /\/dist\/backup\//, /\/dist\/doctor\//, /\/dist\/secrets\//, /\/dist\/tls\/acme\//, /\/node_modules\/acme-client\//, /\/node_modules\/openid-client\//, /\/node_modules\/oidc-provider\//, /\/node_modules\/@simplewebauthn\//, /\/node_modules\/qrcode\//, /\/node_modules\/otpauth\//];

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-footprint-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function get(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', servername: 'api.test.local', headers: { host: 'api.test.local' }, ca, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
  });
}

/**
 * Starts `node --import <recorder> <args>`, waits until it listens, sends one request, stops it
 * with SIGTERM, and returns the URLs of every module it loaded.
 */
async function loadedModules(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hooks.mjs'), HOOKS);
  writeFileSync(join(dir, 'preload.mjs'), PRELOAD);
  const record = join(dir, 'modules.txt');
  writeFileSync(record, '');
  const config = join(dir, 'gateway.yaml');
  writeFileSync(config, 'routes:\n  - name: api\n    host: api.${GATEWAY_DOMAIN}\n    upstream: http://127.0.0.1:9\n    auth: jwt\n');
  const cert = await testCertificate();
  const httpsPort = await freePort();
  const child = spawn(process.execPath, ['--import', join(dir, 'preload.mjs'), ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      CRM_GW_TEST_MODULE_RECORD: record,
      GATEWAY_CONFIG: config,
      GATEWAY_DOMAIN: 'test.local',
      HTTPS_PORT: String(httpsPort),
      HTTP_PORT: String(await freePort()),
      ADMIN_PORT: String(await freePort()),
      LISTEN_ADDRESS: '127.0.0.1',
      TLS_CERT_FILE: cert.cert,
      TLS_KEY_FILE: cert.key,
      API_SECRET_KEY: 'ab'.repeat(32),
      LOG_DIR: join(dir, 'logs'),
      DATA_DIR: join(dir, 'data'),
      ...env,
    },
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + WAIT_MS;
  while (!stderr.includes('gateway listening')) {
    if (child.exitCode !== null || Date.now() > deadline) assert.fail(`the gateway did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // A jwt route without a token: 401, after the pipeline ran once.
  assert.equal(await get(httpsPort, readFileSync(cert.cert, 'utf8')), 401);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  const urls = readFileSync(record, 'utf8').split('\n').filter(Boolean);
  // The recorder saw the gateway itself: an empty list would pass every "not loaded" below.
  for (const seen of [/\/dist\/server\/start\.js$/, /\/node_modules\/yaml\//, /\/node_modules\/jsonwebtoken\//]) {
    assert.ok(urls.some((u) => seen.test(u)), `the recorder missed ${seen}: ${urls.length} modules recorded`);
  }
  return urls;
}

function assertNotLoaded(urls: readonly string[], patterns: readonly RegExp[]): void {
  for (const p of patterns) {
    const hit = urls.find((u) => p.test(u));
    assert.equal(hit, undefined, `${p} was loaded: ${hit}`);
  }
}

test('footprint: node dist/main.js without REDIS_URL, DATABASE_URL or BACKUP_ENABLED loads no ioredis, pg, backup code, AWS SDK, selfsigned, ACME or sign-in-provider code (openid-client, passkeys, TOTP, QR)', { skip: NOT_BUILT }, async (t) => {
  assertNotLoaded(await loadedModules(t, [MAIN]), NEVER);
});

test('footprint: openid-client is loaded only with auth.oidc set (OIDC_ISSUER, …)', { skip: NOT_BUILT }, async (t) => {
  const config = join(tempDir(t), 'gateway.yaml');
  writeFileSync(config, 'routes:\n  - name: api\n    host: api.${GATEWAY_DOMAIN}\n    upstream: http://127.0.0.1:9\n    auth: jwt-or-session\n');
  const urls = await loadedModules(t, [MAIN], { GATEWAY_CONFIG: config, OIDC_ISSUER: 'https://127.0.0.1:9/', OIDC_CLIENT_ID: 'gw', OIDC_CLIENT_SECRET: 'secret' });
  // Then it is: discovery starts in the background (the recorder sees it, so the NEVER check above means something).
  assert.ok(urls.some((u) => /\/node_modules\/openid-client\//.test(u)), 'openid-client loaded with auth.oidc');
  assertNotLoaded(urls, [/\/node_modules\/oidc-provider\//]);
});

test('footprint: `crm-gateway start` loads the gateway alone, not the other commands (doctor, backup, secrets, audit)', { skip: NOT_BUILT }, async (t) => {
  const urls = await loadedModules(t, [BIN, 'start']);
  assertNotLoaded(urls, [...NEVER, /\/dist\/cli\/commands\/(?!index|start)/]);
});

test('footprint: with REDIS_URL and DATABASE_URL set, ioredis and pg are loaded (the recorder sees them)', { skip: NOT_BUILT }, async (t) => {
  const db = await createTestDatabase('footprint');
  t.after(() => db.drop());
  const urls = await loadedModules(t, [MAIN], { REDIS_URL, DATABASE_URL: db.url });
  assert.ok(urls.some((u) => /\/node_modules\/pg\//.test(u)), 'pg not loaded with DATABASE_URL');
  assert.ok(urls.some((u) => /\/node_modules\/ioredis\//.test(u)), 'ioredis not loaded with REDIS_URL');
  assertNotLoaded(urls, [/\/node_modules\/@aws-sdk\//, /\/dist\/backup\//]);
});
