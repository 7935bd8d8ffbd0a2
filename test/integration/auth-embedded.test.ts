import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepare } from '../../src/bootstrap.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { expectRefused, startAuthGateway, uniq, waitFor, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { BIN, ONE_JWT_LINE, jwtClaims, runCli, writeCliConfig } from '../helpers/cli.js';
import { SessionClient } from '../helpers/session-client.js';

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;
const PASSWORD = 'a long enough embedded password';

let gw: AuthTestGateway;
let configDir: string;
let cliEnv: Record<string, string>;

before(async () => {
  assert.ok(existsSync(join(process.cwd(), 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)');
  gw = await startAuthGateway({ routes: ROUTES });
  configDir = mkdtempSync(join(tmpdir(), 'crm-gw-cli-'));
  // No REDIS_URL, no DATABASE_URL: the CLI and the gateway share only the data directory.
  cliEnv = { GATEWAY_CONFIG: writeCliConfig(configDir), API_SECRET_KEY: gw.secret, DATA_DIR: gw.dataDir, GATEWAY_DOMAIN: 'test.local' };
});

after(async () => {
  await gw?.close();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

const mode = (file: string): number => statSync(file).mode & 0o777;

test('CLI admin operations are in the audit files (own chain, verifiable), not only on stderr', async () => {
  const logDir = mkdtempSync(join(tmpdir(), 'crm-gw-cli-audit-'));
  try {
    const name = uniq('audited');
    const res = await runCli(['users', 'add', name, '--roles', 'staff'], { ...cliEnv, LOG_DIR: logDir }, `${PASSWORD}\n`);
    assert.equal(res.code, 0, res.stderr);
    const files = readdirSync(logDir).filter((f) => f.startsWith('security.cli-'));
    assert.equal(files.length, 1, `one CLI security file in ${readdirSync(logDir).join(', ')}`);
    const lines = readFileSync(join(logDir, files[0] as string), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const added = lines.find((l) => l.event === 'admin.user_added');
    assert.ok(added, 'admin.user_added is in the audit file');
    assert.equal(added.user, name);
    assert.ok(typeof added.actor === 'string' && added.actor.length > 0, 'the operating-system user is recorded');
    assert.ok(!JSON.stringify(lines).includes(PASSWORD), 'the password is never written');
    const verify = await runCli(['audit', 'verify', logDir], cliEnv);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  } finally {
    rmSync(logDir, { recursive: true, force: true });
  }
});

test('embedded mode: startup says that local stores are used when DATABASE_URL and REDIS_URL are unset', async () => {
  const log = createMemoryLogger();
  await prepare({ GATEWAY_CONFIG: cliEnv.GATEWAY_CONFIG, API_SECRET_KEY: gw.secret, DATA_DIR: gw.dataDir }, log, { generateCertificate: false });
  const text = log.appMessages.map((m) => String(m.message)).join('\n');
  assert.match(text, /DATABASE_URL not set: embedded local stores/);
  assert.match(text, /REDIS_URL not set/);
  assert.equal(gw.auth.store.kind, 'file');
});

test('users add through the CLI (password on stdin) writes users.json with mode 0600, and the user can log in', async () => {
  const name = uniq('emb-user');
  const res = await runCli(['users', 'add', name, '--roles', 'staff'], cliEnv, `${PASSWORD}\n`);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, '', 'nothing on stdout');
  const file = join(gw.dataDir, 'users.json');
  assert.equal(mode(file), 0o600, 'users file is 0600');
  const stored = readFileSync(file, 'utf8');
  assert.doesNotMatch(stored, new RegExp(PASSWORD), 'the password is not stored');
  assert.match(stored, /scrypt\$/);
  assert.ok(res.events.some((e) => e.event === 'admin.user_added' && e.user === name));
  // The running gateway reads the file: the new user signs in.
  const c = new SessionClient(gw, 'nocodb.test.local');
  await c.login(name, PASSWORD);
  const list = await runCli(['users', 'list', '--json'], cliEnv);
  assert.equal(list.code, 0, list.stderr);
  const users = JSON.parse(list.stdout) as { name: string; roles: string[]; passwordHash?: string; lastLoginAt?: string }[];
  const me = users.find((u) => u.name === name);
  assert.deepEqual(me?.roles, ['staff']);
  assert.equal(me?.passwordHash, undefined, 'list never prints hashes');
  assert.ok(me?.lastLoginAt, 'last login recorded');
  assert.ok(list.events.some((e) => e.event === 'admin.users_listed'));
});

test('a revocation written by the CLI in another process reaches the running gateway through the file watcher', async () => {
  const client = uniq('emb-client');
  const issued = await runCli(['tokens', 'issue', '--client', client, '--roles', 'api', '--ttl', '10m'], cliEnv);
  assert.equal(issued.code, 0, issued.stderr);
  assert.match(issued.stdout, ONE_JWT_LINE);
  const token = issued.stdout.trim();
  const jti = String(jwtClaims(token).jti);
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  const ok = await gw.request({ path: '/v1/x', headers });
  assert.equal(ok.status, 200, ok.body);

  const revoked = await runCli(['tokens', 'revoke', jti], cliEnv);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.ok(revoked.events.some((e) => e.event === 'admin.token_revoked' && e.tokenId === jti));
  const file = join(gw.dataDir, 'revocations.json');
  assert.equal(mode(file), 0o600, 'revocations file is 0600');
  assert.ok(jti in (JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>));
  assert.ok(await waitFor(() => gw.auth.revocations.isRevoked(jti), 3_000), 'the gateway saw the revocation within 3 s');
  await expectRefused(gw, { path: '/v1/x', headers }, 401, 'AUTH_REVOKED');
});

test('a revocation made by the gateway process keeps those the CLI wrote (the file is merged, not overwritten)', async () => {
  const a = await runCli(['tokens', 'issue', '--client', uniq('emb-merge'), '--roles', 'api'], cliEnv);
  const jtiA = String(jwtClaims(a.stdout.trim()).jti);
  assert.equal((await runCli(['tokens', 'revoke', jtiA], cliEnv)).code, 0);
  const b = gw.auth.tokens.issue({ sub: 'client:whoever', roles: [], ttlMs: 60_000, typ: 'access' });
  await gw.auth.revocations.revoke(b.claims.jti, b.claims.exp);
  const file = JSON.parse(readFileSync(join(gw.dataDir, 'revocations.json'), 'utf8')) as Record<string, number>;
  assert.ok(jtiA in file && b.claims.jti in file);
  assert.equal(mode(join(gw.dataDir, 'revocations.json')), 0o600);
});

test('the CLI never takes a password from argv: with an empty stdin, users add fails and creates nobody', async () => {
  const name = uniq('argv-user');
  for (const args of [
    ['users', 'add', name, '--roles', 'staff', '--password', PASSWORD],
    ['users', 'add', name, '--roles', 'staff', `--password=${PASSWORD}`],
    ['users', 'add', name, PASSWORD, '--roles', 'staff'],
  ]) {
    const res = await runCli(args, cliEnv, '');
    // Refused as a usage error before anything runs (issue 18, item 11), without echoing it.
    assert.equal(res.code, 2, args.join(' '));
    assert.match(res.stderr, /unknown option --password|never the command line/);
    assert.ok(!res.stderr.includes(PASSWORD), 'the password is not echoed');
  }
  assert.equal(await gw.auth.store.getUser(name), undefined);
  // A short password on stdin is refused too.
  const short = await runCli(['users', 'add', name, '--roles', 'staff'], cliEnv, 'short\n');
  assert.equal(short.code, 1);
  assert.equal(await gw.auth.store.getUser(name), undefined);
});

test('the bin runs from the package (npx crm-gateway): help lists the auth commands', async () => {
  const res = await runCli(['help'], {});
  assert.equal(res.code, 0);
  for (const cmd of ['users', 'tokens', 'clients', 'migrate']) assert.match(res.stdout, new RegExp(`\\b${cmd}\\b`));
  assert.ok(BIN.endsWith('bin/crm-gateway.js'));
});
