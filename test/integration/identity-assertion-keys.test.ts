import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import { parseConfig } from '../../src/config/load.js';
import { createAuthService } from '../../src/auth/service.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { startEchoUpstream } from '../../src/demo/echo-upstream.js';
import { JWKS_PATH } from '../../src/auth/assertion/routes.js';
import { addClient, claimsFor, ringToken } from '../helpers/auth-gateway.js';
import { httpsRequest, testCertificate } from '../helpers/harness.js';
import { freePort } from '../helpers/ports.js';
import { ensureKeyFile, publishedKeys, readKeyFile, signingKey } from '../../src/auth/assertion/keys.js';
import { runSetup } from '../../src/secrets/setup.js';
import { seedDeployment, tempDir } from '../helpers/deployment.js';
import { notBuilt } from '../helpers/built.js';

/**
 * Issue 14, item 5: the built gateway's wiring (src/main.ts), and instances sharing one key
 * file (a shared DATA_DIR): real processes race to create it; the CLI rotates it.
 */

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const NOT_BUILT = notBuilt('dist/main.js');

function runNode(code: string, cwd = process.cwd()): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (status) => (status === 0 ? resolve(out.trim()) : reject(new Error(`exit ${status}: ${err}`))));
  });
}

test('instances starting together on a shared DATA_DIR all sign with the one key that won', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-assert-race-'));
  try {
    const file = join(dir, 'data', 'assertion-keys.json');
    // Each process loads its modules first, then all create at the same wall-clock moment.
    const go = Date.now() + 4_000;
    const code = `import { ensureKeyFile } from './src/auth/assertion/keys.ts';
      while (Date.now() < ${go}) await new Promise((r) => setTimeout(r, 1));
      const r = ensureKeyFile(${JSON.stringify(file)});
      console.log(JSON.stringify({ kid: r.keys[0].kid, created: r.created }));`;
    const results = (await Promise.all([1, 2, 3, 4].map(() => runNode(code)))).map((o) => JSON.parse(o) as { kid: string; created: boolean });
    assert.equal(new Set(results.map((r) => r.kid)).size, 1, 'one key for all');
    assert.equal(results.filter((r) => r.created).length, 1, 'created once');
    assert.equal(ensureKeyFile(file).keys[0]?.kid, results[0]?.kid);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`secrets rotate-assertion` rotates the deployment\'s key file (found through DATA_DIR), --no-grace drops the old key', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-assert-cli-'));
  try {
    const file = join(dir, 'shared', 'assertion-keys.json');
    const [old] = ensureKeyFile(file).keys;
    const cli = (args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', `import { run } from ${JSON.stringify(join(process.cwd(), 'src/cli/main.ts'))}; process.exitCode = await run(${JSON.stringify(args)});`], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, GATEWAY_CONFIG: join(dir, 'missing.yaml'), DATA_DIR: join(dir, 'shared'), ...env },
      });
    const r = cli(['secrets', 'rotate-assertion']);
    assert.equal(r.status, 0, r.stderr);
    const keys = readKeyFile(file);
    assert.equal(keys.length, 2);
    const fresh = keys[1];
    assert.ok(old && fresh);
    assert.match(r.stdout, new RegExp(`new key ${fresh.kid} signs from `));
    assert.match(r.stdout, new RegExp(`${old.kid} stays in the JWKS until `));
    assert.match(r.stderr, /could not read the config/);
    assert.equal(signingKey(keys, Date.now())?.kid, old.kid, 'the old key signs until the new one is active');
    const hard = cli(['secrets', 'rotate-assertion', '--no-grace', '--key-file', file]);
    assert.equal(hard.status, 0, hard.stderr);
    const after = readKeyFile(file);
    assert.equal(after.length, 1);
    assert.deepEqual(publishedKeys(after, Date.now()).map((k) => k.kid), [signingKey(after, Date.now())?.kid]);
    assert.match(hard.stdout, /dropped 2 key\(s\) now \(--no-grace\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('setup makes the key file in DATA_DIR (0600) and keeps it when run again', async () => {
  const dir = tempDir();
  seedDeployment(dir);
  const first = await runSetup({ cwd: dir, maxTokenTtlMs: 86_400_000 });
  const file = join(dir, 'data', 'assertion-keys.json');
  assert.equal(first.assertionKey.path, file);
  assert.equal(first.assertionKey.created, true);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readKeyFile(file)[0]?.kid, first.assertionKey.kid);
  const again = await runSetup({ cwd: dir, maxTokenTtlMs: 86_400_000 });
  assert.equal(again.assertionKey.created, false);
  assert.equal(again.assertionKey.kid, first.assertionKey.kid);
});

test('node dist/main.js: the key file made at first start, the JWKS on the routed host and the admin listener, the header on forwarded requests', { skip: NOT_BUILT, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-assert-main-'));
  const upstream = await startEchoUpstream('assertion-upstream');
  t.after(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const cert = await testCertificate();
  const [httpsPort, httpPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const secret = 'cd'.repeat(32);
  const configFile = join(dir, 'gateway.yaml');
  const routes = `routes:\n  - name: crm-api\n    host: api.\${GATEWAY_DOMAIN}\n    upstream: ${upstream.url}\n    auth: jwt\n    roles: [api]\n`;
  writeFileSync(configFile, routes);
  const env: Record<string, string> = {
    GATEWAY_CONFIG: configFile, GATEWAY_DOMAIN: 'test.local', HTTPS_PORT: String(httpsPort), HTTP_PORT: String(httpPort), ADMIN_PORT: String(adminPort),
    LISTEN_ADDRESS: '127.0.0.1', TLS_CERT_FILE: cert.cert, TLS_KEY_FILE: cert.key, API_SECRET_KEY: secret, LOG_DIR: join(dir, 'logs'), DATA_DIR: join(dir, 'data'),
  };
  // The API client, in the embedded store the gateway will read.
  const log = createMemoryLogger();
  const auth = await createAuthService(parseConfig(routes, env), { log });
  assert.ok(auth);
  await addClient(auth, 'etl', ['api']);
  await auth.close();
  const child = spawn(process.execPath, [MAIN], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...env } });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 15_000;
  while (!stderr.includes('gateway listening')) {
    if (child.exitCode !== null || Date.now() > deadline) assert.fail(`the gateway did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const keyFile = join(dir, 'data', 'assertion-keys.json');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const kid = readKeyFile(keyFile)[0]?.kid;
  const ca = readFileSync(cert.cert, 'utf8');
  const req = (path: string, headers: Record<string, string> = {}) => httpsRequest(httpsPort, ca, { host: `api.test.local:${httpsPort}`, servername: 'api.test.local', path, headers });
  const pub = await req(JWKS_PATH);
  assert.equal(pub.status, 200);
  assert.deepEqual(pub.json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid), [kid]);
  const admin = await fetch(`http://127.0.0.1:${adminPort}${JWKS_PATH}`);
  assert.equal(await admin.text(), pub.body);
  assert.equal(upstream.seen.length, 0, 'the JWKS never went upstream');
  const res = await req('/v1/x', { authorization: `Bearer ${ringToken(secret, claimsFor('client:etl'))}`, 'x-gateway-assertion': 'forged' });
  assert.equal(res.status, 200, res.body);
  const sent = upstream.seen.at(-1)?.headers['x-gateway-assertion'];
  assert.equal(typeof sent, 'string');
  const { header, payload } = jwt.decode(sent as string, { complete: true }) as { header: jwt.JwtHeader; payload: jwt.JwtPayload };
  assert.deepEqual([header.alg, header.kid, payload.iss, payload.aud, payload.sub], ['ES256', kid, 'https://test.local', 'crm-api', 'client:etl']);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
});
