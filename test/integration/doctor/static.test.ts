import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { runDoctor } from '../../../src/doctor/run.js';
import type { CheckResult } from '../../../src/doctor/types.js';
import { runSetup } from '../../../src/secrets/setup.js';
import { parseDotenv } from '../../../src/secrets/dotenv.js';
import { writeFileAtomic } from '../../../src/secrets/files.js';
import { ALL_SECRET_NAMES } from '../../../src/secrets/specs.js';
import { ensureDevCertificate } from '../../../src/tls/certificates.js';
import { REPO, runCli, seedDeployment, startPasswordRedis, tempDir, testCa, type PasswordRedis } from '../../helpers/deployment.js';

const HOSTS = ['api.test.local', 'nocodb.test.local', 'metabase.test.local'];
const DAY = 86_400_000;
let template: string;
let redis: PasswordRedis;

function setEnv(dir: string, values: Record<string, string>): void {
  const path = join(dir, '.env');
  const doc = parseDotenv(readFileSync(path, 'utf8'));
  for (const [k, v] of Object.entries(values)) doc.set(k, v);
  writeFileAtomic(path, doc.toString());
}

function installCert(dir: string, pair: { cert: string; key: string }): void {
  copyFileSync(pair.cert, join(dir, 'certs', 'gateway.crt'));
  copyFileSync(pair.key, join(dir, 'certs', 'gateway.key'));
  chmodSync(join(dir, 'certs', 'gateway.key'), 0o600);
}

function writeManifest(dir: string, name: string, body: Record<string, unknown>): void {
  writeFileSync(join(dir, 'backups', `${name}.manifest.json`), JSON.stringify(body));
}

function editCompose(dir: string, edit: (doc: ReturnType<typeof parseDocument>) => void, file = 'docker-compose.yml'): void {
  const doc = parseDocument(readFileSync(join(dir, 'docker-compose.yml'), 'utf8'));
  edit(doc);
  writeFileSync(join(dir, file), doc.toString());
}

/** A production deployment that should pass every check: built once, copied per case. */
async function buildTemplate(): Promise<string> {
  const dir = tempDir('crm-gw-good-');
  seedDeployment(dir);
  copyFileSync(join(REPO, 'docker-compose.yml'), join(dir, 'docker-compose.yml'));
  await runSetup({ cwd: dir, mode: 'production', maxTokenTtlMs: DAY });
  mkdirSync(join(dir, 'certs'), { mode: 0o700 });
  installCert(dir, testCa().issue(HOSTS, 60));
  setEnv(dir, { GATEWAY_DOMAIN: 'test.local', CORS_ORIGINS: 'https://app.test.local', WHATSAPP_APP_SECRET: 'c3'.repeat(16) });
  writeManifest(dir, 'crm-20250101T020000Z', { verified: true, createdAt: new Date(Date.now() - 3_600_000).toISOString() });
  return dir;
}

function copyOfGood(): string {
  const dir = tempDir('crm-gw-case-');
  cpSync(template, dir, { recursive: true });
  return dir;
}

async function doctor(dir: string, extra: Partial<Parameters<typeof runDoctor>[0]> = {}): Promise<CheckResult[]> {
  return runDoctor({ cwd: dir, env: {}, production: true, ...extra });
}

function only(results: CheckResult[], id: string): CheckResult[] {
  return results.filter((r) => r.id === id);
}

function assertFlagged(results: CheckResult[], id: string, status: 'FAIL' | 'WARN', match: RegExp): void {
  const hit = only(results, id).find((r) => r.status === status && match.test(r.message));
  assert.ok(hit, `expected ${status} ${id} matching ${match}; got:\n${results.filter((r) => r.status !== 'PASS').map((r) => `${r.status} ${r.id} ${r.message}`).join('\n')}`);
  assert.ok(hit.fix, `${id} gives a fix`);
}

before(async () => {
  template = await buildTemplate();
  redis = await startPasswordRedis('d4'.repeat(32));
});
after(() => redis?.stop());

describe('doctor on a good production deployment', () => {
  test('every checklist item passes', async () => {
    const results = await doctor(copyOfGood());
    const notPass = results.filter((r) => r.status !== 'PASS');
    assert.deepEqual(notPass, [], notPass.map((r) => `${r.status} ${r.id} ${r.message}`).join('\n'));
    for (const id of ['env-file', 'env-file-mode', 'environment', 'config', 'secret-strength', 'secrets-shared', 'jwt-key-ring', 'secrets-age', 'gitignore', 'certificate', 'certificate-key-mode', 'tls-min-version', 'hsts', 'https-redirect', 'cors', 'trusted-proxies', 'redis-password', 'postgres-tls', 'backups', 'backup-key', 'logs', 'compose']) {
      assert.ok(only(results, id).length > 0, `${id} reported`);
    }
  });

  test('the settings judged are those of the compose gateway service, over .env', async () => {
    const results = await doctor(copyOfGood());
    assert.match(only(results, 'environment')[0]?.message ?? '', /docker-compose\.yml services\.gateway\.environment/);
    assert.match(only(results, 'redis-password')[0]?.message ?? '', /redis:\/\/redis:6379/);
  });
});

type Case = { name: string; id: string; status?: 'FAIL' | 'WARN'; match: RegExp; mutate(dir: string): void | Promise<void>; opts?: Partial<Parameters<typeof runDoctor>[0]> };

const CASES: Case[] = [
  { name: 'malformed .env', id: 'env-file', match: /line \d+: not KEY=value/, mutate: (d) => writeFileSync(join(d, '.env'), `${readFileSync(join(d, '.env'), 'utf8')}this is not a setting\n`) },
  { name: '.env readable by others', id: 'env-file-mode', match: /mode 644/, mutate: (d) => chmodSync(join(d, '.env'), 0o644) },
  { name: 'GATEWAY_ENV=development judged as production', id: 'environment', match: /GATEWAY_ENV is development/, mutate: (d) => setEnv(d, { GATEWAY_ENV: 'development' }) },
  { name: 'invalid config', id: 'config', match: /at least one route/, mutate: (d) => writeFileSync(join(d, 'config', 'gateway.yaml'), 'routes: []\n') },
  { name: 'default database password', id: 'secret-strength', match: /CRM_DB_PASSWORD is a default/, mutate: (d) => setEnv(d, { CRM_DB_PASSWORD: 'changeme' }) },
  { name: 'JWT key under the policy minimum', id: 'secret-strength', match: /API_SECRET_KEY is shorter than 32/, mutate: (d) => setEnv(d, { API_SECRET_KEY: 'Ab3dEf7hIjKl' }) },
  { name: 'API key shorter than 32 bytes hex', id: 'secret-strength', match: /CRM_API_SECRET is too short \(40 characters; at least 64\)/, mutate: (d) => setEnv(d, { CRM_API_SECRET: '0123456789abcdef0123456789abcdef01234567' }) },
  { name: 'a generated secret missing', id: 'secret-strength', match: /NOCODB_JWT_SECRET is not set/, mutate: (d) => setEnv(d, { NOCODB_JWT_SECRET: '' }) },
  { name: 'Meta app secret missing with a webhook route', id: 'secret-strength', match: /WHATSAPP_APP_SECRET is not set/, mutate: (d) => setEnv(d, { WHATSAPP_APP_SECRET: '' }) },
  { name: 'one secret used for two services', id: 'secrets-shared', match: /CRM_API_SECRET and API_SECRET_KEY hold the same value|API_SECRET_KEY and CRM_API_SECRET/, mutate: (d) => setEnv(d, { CRM_API_SECRET: parseDotenv(readFileSync(join(d, '.env'), 'utf8')).get('API_SECRET_KEY') ?? '' }) },
  { name: 'malformed JWT key ring', id: 'jwt-key-ring', match: /entry 1/, mutate: (d) => setEnv(d, { API_SECRET_KEY_PREVIOUS: 'nodate' }) },
  {
    name: 'secret older than 90 days',
    id: 'secrets-age',
    status: 'WARN',
    match: /CRM_DB_PASSWORD is 100 days old/,
    mutate: (d) => {
      const path = join(d, '.env');
      const doc = parseDotenv(readFileSync(path, 'utf8'));
      doc.setCreatedAt('CRM_DB_PASSWORD', new Date(Date.now() - 100 * DAY - 60_000));
      writeFileAtomic(path, doc.toString());
    },
  },
  { name: 'self-signed certificate', id: 'certificate', match: /self-signed/, mutate: async (d) => {
    rmSync(join(d, 'certs', 'gateway.crt'));
    rmSync(join(d, 'certs', 'gateway.key'));
    await ensureDevCertificate(join(d, 'certs', 'gateway.crt'), join(d, 'certs', 'gateway.key'), 'test.local');
  } },
  { name: 'certificate expiring within 14 days', id: 'certificate', match: /expires in \d days/, mutate: (d) => installCert(d, testCa().issue(HOSTS, 5)) },
  { name: 'certificate not naming the route hosts', id: 'certificate', match: /does not cover api\.test\.local, nocodb\.test\.local, metabase\.test\.local/, mutate: (d) => installCert(d, testCa().issue(['other.example'], 60)) },
  { name: 'certificate and key that do not match', id: 'certificate', match: /rejected by OpenSSL/, mutate: (d) => copyFileSync(testCa().issue(HOSTS, 60).key, join(d, 'certs', 'gateway.key')) },
  { name: 'certificate and key missing', id: 'certificate', match: /no TLS certificate/, mutate: (d) => rmSync(join(d, 'certs'), { recursive: true }) },
  { name: 'certificate missing beside its key', id: 'certificate', match: /the certificate certs\/gateway\.crt \(TLS_CERT_FILE\) does not exist/, mutate: (d) => rmSync(join(d, 'certs', 'gateway.crt')) },
  { name: 'unreadable key file (a folder)', id: 'certificate', match: /EISDIR/, mutate: (d) => {
    rmSync(join(d, 'certs', 'gateway.key'));
    mkdirSync(join(d, 'certs', 'gateway.key'));
  } },
  { name: 'RSA key under 2048 bits', id: 'certificate', match: /RSA key of 1024 bits|rejected by OpenSSL/, mutate: (d) => installCert(d, testCa().issue(HOSTS, 60, { rsaBits: 1024 })) },
  { name: 'TLS key readable by others', id: 'certificate-key-mode', match: /readable by others \(mode 644/, mutate: (d) => chmodSync(join(d, 'certs', 'gateway.key'), 0o644) },
  { name: 'nginx edge offering TLS 1.0', id: 'tls-min-version', match: /nginx\/edge\.conf:2 offers ssl_protocols TLSv1 TLSv1\.2/, mutate: (d) => {
    mkdirSync(join(d, 'nginx'));
    writeFileSync(join(d, 'nginx', 'edge.conf'), 'server {\n  ssl_protocols TLSv1 TLSv1.2;\n}\n');
  } },
  { name: 'HSTS off', id: 'hsts', match: /HSTS is off/, mutate: (d) => writeFileSync(join(d, 'config', 'gateway.yaml'), `tls: { hstsMaxAge: 0 }\n${readFileSync(join(d, 'config', 'gateway.yaml'), 'utf8')}`) },
  { name: 'plain HTTP served', id: 'https-redirect', match: /FORCE_HTTPS=false/, mutate: (d) => setEnv(d, { FORCE_HTTPS: 'false' }) },
  { name: 'CORS wildcard', id: 'cors', match: /CORS_ORIGINS contains \*/, mutate: (d) => setEnv(d, { CORS_ORIGINS: '*' }) },
  { name: 'every proxy trusted', id: 'trusted-proxies', match: /covers every address/, mutate: (d) => setEnv(d, { TRUSTED_PROXIES: '0.0.0.0/0,::/0' }) },
  { name: 'PostgreSQL without TLS', id: 'postgres-tls', match: /without TLS \(sslmode=disable\)/, mutate: (d) => setEnv(d, { DATABASE_URL: 'postgres://gw:Xk9mP2qR7vT4wZ8nL3jH@db.internal:5432/gw?sslmode=disable' }) },
  { name: 'backups disabled', id: 'backups', match: /backups are disabled/, mutate: (d) => setEnv(d, { BACKUP_ENABLED: 'false' }) },
  { name: 'no verified backup', id: 'backups', match: /no verified backup/, mutate: (d) => {
    rmSync(join(d, 'backups', 'crm-20250101T020000Z.manifest.json'));
    writeManifest(d, 'crm-unverified', { verified: false, createdAt: new Date().toISOString() });
  } },
  // Re-verified today, taken three days ago: still three days old (verifiedAt once counted as its age).
  { name: 'old backup re-verified today', id: 'backups', match: /newest verified backup is 3 days old/, mutate: (d) => writeManifest(d, 'crm-20250101T020000Z', { verified: true, createdAt: new Date(Date.now() - 3 * DAY).toISOString(), finishedAt: new Date(Date.now() - 3 * DAY + 60_000).toISOString(), verifiedAt: new Date().toISOString() }) },
  { name: 'last verified backup too old', id: 'backups', match: /newest verified backup is 3 days old/, mutate: (d) => writeManifest(d, 'crm-20250101T020000Z', { verified: true, createdAt: new Date(Date.now() - 3 * DAY).toISOString() }) },
  { name: 'backup key missing', id: 'backup-key', match: /no backup encryption key/, mutate: (d) => rmSync(join(d, 'secrets', 'backup.key')) },
  { name: 'backup key readable by others', id: 'backup-key', match: /mode 644/, mutate: (d) => chmodSync(join(d, 'secrets', 'backup.key'), 0o644) },
  { name: 'backup key unreadable (a folder)', id: 'backup-key', match: /unreadable \(not a regular file\)/, mutate: (d) => {
    rmSync(join(d, 'secrets', 'backup.key'));
    mkdirSync(join(d, 'secrets', 'backup.key'));
  } },
  { name: 'backup key corrupted', id: 'backup-key', match: /is not a hex key/, mutate: (d) => writeFileSync(join(d, 'secrets', 'backup.key'), 'zz\n') },
  // The backup commands refuse anything but exactly 32 bytes; doctor once passed a longer key.
  { name: 'backup key longer than 32 bytes', id: 'backup-key', match: /is 33 bytes, not 32/, mutate: (d) => writeFileSync(join(d, 'secrets', 'backup.key'), `${'ab'.repeat(33)}\n`) },
  { name: 'backup key beside the backups', id: 'backup-key', match: /inside the backup folder/, mutate: (d) => {
    copyFileSync(join(d, 'secrets', 'backup.key'), join(d, 'backups', 'backup.key'));
    setEnv(d, { BACKUP_KEY_FILE: 'backups/backup.key' });
  } },
  { name: 'log folder is not a folder', id: 'logs', match: /is not a folder/, mutate: (d) => {
    rmSync(join(d, 'logs'), { recursive: true });
    writeFileSync(join(d, 'logs'), '');
  } },
  { name: 'a backend publishing a port', id: 'compose', match: /postgres publishes 5432:5432 on every interface/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'postgres', 'ports'], ['5432:5432'])) },
  { name: 'a backend on the host loopback (development only)', id: 'compose', match: /redis publishes 127\.0\.0\.1:6379:6379 on the host's loopback/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'redis', 'ports'], ['127.0.0.1:6379:6379'])) },
  { name: 'the gateway publishing its admin port', id: 'compose', match: /the gateway publishes 9090:9090/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'gateway', 'ports'], ['443:8443', '80:8880', '9090:9090'])) },
  { name: 'a port published by the override file', id: 'compose', match: /docker-compose\.override\.yml: nocodb publishes 8080/, mutate: (d) => writeFileSync(join(d, 'docker-compose.override.yml'), 'services:\n  nocodb:\n    ports: ["8080:8080"]\n') },
  { name: 'host networking', id: 'compose', match: /nocodb uses network_mode: host/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'nocodb', 'network_mode'], 'host')) },
  { name: 'Redis without --requirepass', id: 'redis-password', match: /redis runs without --requirepass/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'redis', 'command'], ['redis-server', '--appendonly', 'yes'])) },
  { name: 'Redis password typed into the file', id: 'redis-password', match: /--requirepass value is typed into the file/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'redis', 'command'], ['redis-server', '--requirepass', 'hunter2hunter2'])) },
  { name: 'PostgreSQL container without TLS', id: 'postgres-tls', match: /postgres does not enable TLS/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'postgres', 'command'], ['postgres'])) },
  { name: 'a client connecting without TLS', id: 'postgres-tls', match: /crm-api's DATABASE_URL connects to PostgreSQL without TLS/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'crm-api', 'environment', 'DATABASE_URL'], 'postgresql://crm_user:${CRM_DB_PASSWORD}@postgres:5432/crm_autonomo')) },
  { name: "NocoDB's NC_DB URL (no TLS possible)", id: 'postgres-tls', match: /nocodb's NC_DB connects to PostgreSQL without TLS/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'nocodb', 'environment', 'NC_DB'], 'pg://postgres:5432?u=crm_user&p=${CRM_DB_PASSWORD}&d=crm_autonomo')) },
  { name: 'a secret typed into the compose file', id: 'compose', match: /postgres has POSTGRES_PASSWORD typed into the file/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'postgres', 'environment', 'POSTGRES_PASSWORD'], 'hunter2')) },
  { name: "the gateway's JWT key handed to NocoDB", id: 'secrets-shared', match: /API_SECRET_KEY is handed to nocodb/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'nocodb', 'environment', 'NC_AUTH_JWT_SECRET'], '${API_SECRET_KEY}')) },
  { name: 'the whole .env loaded into a service', id: 'secrets-shared', match: /metabase loads \.env whole/, mutate: (d) => editCompose(d, (c) => c.setIn(['services', 'metabase', 'env_file'], ['.env'])) },
  { name: 'a compose file that does not parse', id: 'compose', match: /YAML/, mutate: (d) => writeFileSync(join(d, 'docker-compose.yml'), 'services:\n  a: [unclosed\n') },
];

describe('doctor: each check fails on a crafted bad setup', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const dir = copyOfGood();
      await c.mutate(dir);
      assertFlagged(await doctor(dir, c.opts), c.id, c.status ?? 'FAIL', c.match);
    });
  }

  test('the same problems are WARN, not FAIL, when judged as development (where the policy says so)', async () => {
    const dir = copyOfGood();
    setEnv(dir, { GATEWAY_ENV: 'development', CORS_ORIGINS: '*' });
    const results = await doctor(dir, { production: false });
    assert.equal(only(results, 'cors')[0]?.status, 'WARN');
  });
});

describe('doctor: upstreamTls client keys', () => {
  test('a route\'s upstreamTls key is 0600 to pass; readable by others is a FAIL with the chmod', async () => {
    const dir = copyOfGood();
    const client = testCa().issue(['gateway-client.test.local'], 60);
    // Absolute paths: the config is parsed (and its upstreamTls files read) from this process's cwd.
    const cert = join(dir, 'certs', 'crm-client.crt');
    const key = join(dir, 'certs', 'crm-client.key');
    copyFileSync(client.cert, cert);
    copyFileSync(client.key, key);
    chmodSync(key, 0o600);
    const file = join(dir, 'config', 'gateway.yaml');
    const doc = parseDocument(readFileSync(file, 'utf8'));
    doc.addIn(['routes'], doc.createNode({ name: 'crm-mtls', host: 'crm.${GATEWAY_DOMAIN}', upstream: 'https://10.0.0.5:8443', auth: 'jwt', upstreamTls: { ca: testCa().caCert, cert, key } }));
    writeFileSync(file, doc.toString());
    const good = only(await doctor(dir), 'upstream-tls-key');
    assert.deepEqual(good.map((r) => r.status), ['PASS'], JSON.stringify(good));
    chmodSync(key, 0o644);
    assertFlagged(await doctor(dir), 'upstream-tls-key', 'FAIL', /route crm-mtls: upstreamTls key certs\/crm-client\.key is mode 644/);
  });
});

describe('doctor: Redis is asked, not just configured', () => {
  const noCompose = { composeFiles: [] as string[] };

  test('a Redis that answers without a password is a FAIL, whatever the config says', async () => {
    const dir = copyOfGood();
    setEnv(dir, { REDIS_URL: 'redis://127.0.0.1:6379' });
    const [r] = only(await doctor(dir, noCompose), 'redis-password');
    assert.equal(r?.status, 'FAIL');
    assert.match(r?.message ?? '', /answers without a password/);
  });

  test('a wrong password is a FAIL; the right one a PASS', async () => {
    const dir = copyOfGood();
    setEnv(dir, { REDIS_URL: redis.url, REDIS_PASSWORD: 'e5'.repeat(32) });
    const [wrong] = only(await doctor(dir, noCompose), 'redis-password');
    assert.equal(wrong?.status, 'FAIL');
    assert.match(wrong?.message ?? '', /refuses the configured password/);
    setEnv(dir, { REDIS_PASSWORD: redis.password });
    const [right] = only(await doctor(dir, noCompose), 'redis-password');
    assert.equal(right?.status, 'PASS', right?.message);
    assert.match(right?.message ?? '', /refuses anonymous commands and accepts the configured password/);
  });

  test('no compose file in production is a WARN (nothing to check exposure against)', async () => {
    const results = await doctor(copyOfGood(), noCompose);
    assert.equal(only(results, 'compose')[0]?.status, 'WARN');
  });
});

describe('doctor: .gitignore in a git checkout', () => {
  test("the repo's own .gitignore covers .env*, keys, logs and backups", async () => {
    const dir = copyOfGood();
    spawnSync('git', ['init', '-q'], { cwd: dir, timeout: 10_000 });
    copyFileSync(join(REPO, '.gitignore'), join(dir, '.gitignore'));
    const results = only(await doctor(dir), 'gitignore');
    assert.deepEqual(results.map((r) => r.status), ['PASS'], results.map((r) => r.message).join('\n'));
  });

  test("regression: the repo's /secrets/ rule ignores deployment secrets, not source folders named secrets", () => {
    const ignored = (path: string): boolean => spawnSync('git', ['check-ignore', '-q', '--no-index', '--', path], { cwd: REPO, timeout: 10_000 }).status === 0;
    for (const p of ['.env', '.env.backup-20250101T000000Z', '.env.tmp-0a1b2c', 'secrets/backup.key', 'secrets/postgres.crt', 'certs/gateway.key', 'logs/x.log', 'backups/x.manifest.json']) assert.ok(ignored(p), `${p} ignored`);
    for (const p of ['src/secrets/setup.ts', 'test/unit/secrets/dotenv.test.ts', '.env.example', 'docker-compose.yml', 'nginx/crm-gateway.conf']) assert.ok(!ignored(p), `${p} not ignored`);
  });

  test('a .gitignore that forgets .env and the backup key fails, naming them', async () => {
    const dir = copyOfGood();
    spawnSync('git', ['init', '-q'], { cwd: dir, timeout: 10_000 });
    writeFileSync(join(dir, '.gitignore'), 'node_modules/\nlogs/\nbackups/\ncerts/\n');
    const results = only(await doctor(dir), 'gitignore');
    assert.ok(results.some((r) => r.status === 'FAIL' && /^\.env \(\.env\)/.test(r.message)), results.map((r) => r.message).join('\n'));
    assert.ok(results.some((r) => r.status === 'FAIL' && /backup key \(secrets\/backup\.key\)/.test(r.message)));
  });
});

describe('npx crm-gateway doctor (the command)', () => {
  test('exit 0 on a good deployment, 1 on any FAIL; --json carries every result', async () => {
    const dir = copyOfGood();
    const good = await runCli(['doctor', '--production'], { cwd: dir });
    assert.equal(good.code, 0, good.stdout);
    assert.match(good.stdout, /\d+ PASS, 0 WARN, 0 FAIL/);
    chmodSync(join(dir, '.env'), 0o604);
    const bad = await runCli(['doctor', '--production', '--json'], { cwd: dir });
    assert.equal(bad.code, 1);
    const report = JSON.parse(bad.stdout) as { production: boolean; results: CheckResult[] };
    assert.equal(report.production, true);
    assert.ok(report.results.some((r) => r.id === 'env-file-mode' && r.status === 'FAIL' && r.fix === 'chmod 600 .env'));
    assert.equal(statSync(join(dir, '.env')).mode & 0o777, 0o604, 'doctor only reports; it changes nothing');
    const env = parseDotenv(readFileSync(join(dir, '.env'), 'utf8'));
    const values = ALL_SECRET_NAMES.map((n) => env.get(n) ?? '').filter((v) => v !== '');
    assert.ok(values.length >= 8);
    for (const v of values) assert.ok(!bad.stdout.includes(v) && !good.stdout.includes(v), 'a secret value was printed');
  });

  test('help lists setup, secrets and doctor beside the other commands', async () => {
    const r = await runCli(['help'], { cwd: tempDir() });
    assert.equal(r.code, 0);
    for (const c of ['setup [development|production]', 'secrets rotate', 'secrets rotate-jwt', 'doctor [--production]', 'doctor --live']) assert.ok(r.stdout.includes(c), c);
  });
});

describe('doctor: predictable secrets and keys (from the adversarial review of setup, secrets and doctor)', () => {
  async function deployment(): Promise<string> {
    const dir = tempDir('crm-gw-review-');
    seedDeployment(dir);
    await runSetup({ cwd: dir, mode: 'production', maxTokenTtlMs: DAY });
    return dir;
  }

  async function results(dir: string, id: string): Promise<CheckResult[]> {
    return (await runDoctor({ cwd: dir, env: {}, production: true })).filter((r) => r.id === id);
  }

  test('doctor: a secret of the right length and alphabet that repeats a short pattern FAILs secret-strength', async () => {
    const dir = await deployment();
    // 64 hex characters, 16 distinct: passed every rule, though it is one 16-character pattern.
    setEnv(dir, { CRM_API_SECRET: '0123456789abcdef'.repeat(4), LOG_HASH_KEY: 'deadbeefcafef00d1234567890abcdef'.repeat(2) });
    const found = await results(dir, 'secret-strength');
    for (const name of ['CRM_API_SECRET', 'LOG_HASH_KEY']) {
      assert.ok(found.some((r) => r.status === 'FAIL' && r.message.startsWith(`${name} is predictable`)), `${name} flagged: ${JSON.stringify(found)}`);
    }
  });

  test('doctor: a backup key of 32 bytes hex that is all zeros FAILs backup-key', async () => {
    const dir = await deployment();
    writeFileSync(join(dir, 'secrets', 'backup.key'), `${'0'.repeat(64)}\n`, { mode: 0o600 });
    const found = await results(dir, 'backup-key');
    assert.ok(found.some((r) => r.status === 'FAIL' && /predictable/.test(r.message)), JSON.stringify(found));
  });
});
