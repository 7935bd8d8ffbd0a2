import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSetup } from '../../../src/secrets/setup.js';
import { parseDotenv } from '../../../src/secrets/dotenv.js';
import { SECRET_SPECS } from '../../../src/secrets/specs.js';
import { keyId, parsePreviousKeys } from '../../../src/secrets/keyring.js';
import { runCli, seedDeployment, tempDir } from '../../helpers/deployment.js';

const DAY = 86_400_000;
const mode = (p: string): number => statSync(p).mode & 0o777;
const backupsOf = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('.env.backup-')).sort();

function deployment(): string {
  const dir = tempDir();
  seedDeployment(dir);
  return dir;
}

async function setup(dir: string, extra: Partial<Parameters<typeof runSetup>[0]> = {}) {
  return runSetup({ cwd: dir, maxTokenTtlMs: DAY, ...extra });
}

describe('setup: a fresh deployment', () => {
  test('writes .env (0600) from the template with every secret, dated, and production settings', async () => {
    const dir = deployment();
    const now = new Date('2025-05-05T05:05:05.000Z');
    const r = await setup(dir, { mode: 'production', now });
    const envPath = join(dir, '.env');
    assert.equal(mode(envPath), 0o600);
    assert.equal(r.created, true);
    assert.equal(r.backup, undefined, 'nothing to back up');
    const doc = parseDotenv(readFileSync(envPath, 'utf8'));
    assert.equal(doc.get('GATEWAY_ENV'), 'production');
    assert.equal(doc.get('BACKUP_ENABLED'), 'true');
    for (const s of SECRET_SPECS) {
      assert.ok(doc.get(s.name), `${s.name} set`);
      assert.equal(doc.createdAt(s.name)?.toISOString(), now.toISOString(), `${s.name} dated`);
    }
    assert.deepEqual(r.generated.sort(), SECRET_SPECS.map((s) => s.name).sort());
    assert.equal(doc.get('WHATSAPP_APP_SECRET'), '', 'Meta issues it; never generated');
    assert.ok(r.warnings.some((w) => w.includes('WHATSAPP_APP_SECRET')));
    // every template key is there, in the template's order, with its comments
    const template = parseDotenv(readFileSync(join(dir, '.env.example'), 'utf8'));
    assert.deepEqual(doc.keys(), template.keys());
  });

  test('the backup key goes to its own 0600 file in a 0700 folder, never into .env', async () => {
    const dir = deployment();
    await setup(dir);
    const keyFile = join(dir, 'secrets', 'backup.key');
    assert.match(readFileSync(keyFile, 'utf8'), /^[0-9a-f]{64}\n$/);
    assert.equal(mode(keyFile), 0o600);
    assert.equal(mode(join(dir, 'secrets')), 0o700);
    const key = readFileSync(keyFile, 'utf8').trim();
    assert.ok(!readFileSync(join(dir, '.env'), 'utf8').includes(key));
  });

  test("PostgreSQL's internal certificate: key 0600, named for the compose service", async () => {
    const dir = deployment();
    const r = await setup(dir);
    assert.equal(mode(join(dir, 'secrets', 'postgres.key')), 0o600);
    assert.match(readFileSync(join(dir, 'secrets', 'postgres.crt'), 'utf8'), /BEGIN CERTIFICATE/);
    assert.ok(r.postgresCertificate.validTo.getTime() > Date.now() + 365 * DAY);
  });

  test('runtime folders compose mounts are made by setup (logs 0750, data and backups 0700)', async () => {
    const dir = deployment();
    await setup(dir);
    assert.equal(mode(join(dir, 'logs')), 0o750);
    assert.equal(mode(join(dir, 'data')), 0o700);
    assert.equal(mode(join(dir, 'backups')), 0o700);
  });

  test('no .env-like file is ever seen with a mode other than 0600 while setup writes', async () => {
    const dir = deployment();
    writeFileSync(join(dir, '.env'), 'GATEWAY_ENV=development\n', { mode: 0o644 });
    const seen: number[] = [];
    const watcher = watch(dir, (_e, name) => {
      if (!name || !String(name).startsWith('.env') || String(name) === '.env.example' || String(name) === '.env') return;
      try {
        seen.push(mode(join(dir, String(name))));
      } catch {
        // gone already (a renamed temp file)
      }
    });
    try {
      await setup(dir, { rotate: true });
    } finally {
      watcher.close();
    }
    assert.ok(seen.every((m) => m === 0o600), `modes seen: ${seen.map((m) => m.toString(8)).join(',')}`);
    assert.equal(mode(join(dir, '.env')), 0o600);
  });
});

describe('setup: re-runs and existing files', () => {
  test('a second run changes nothing: same bytes, no backup, same backup key', async () => {
    const dir = deployment();
    await setup(dir, { mode: 'production' });
    const before = readFileSync(join(dir, '.env'), 'utf8');
    const key = readFileSync(join(dir, 'secrets', 'backup.key'), 'utf8');
    const r = await setup(dir, { mode: 'production' });
    assert.equal(r.changed, false);
    assert.equal(r.backup, undefined);
    assert.deepEqual(r.generated, []);
    assert.equal(readFileSync(join(dir, '.env'), 'utf8'), before);
    assert.equal(readFileSync(join(dir, 'secrets', 'backup.key'), 'utf8'), key);
    assert.deepEqual(backupsOf(dir), []);
  });

  test('existing values are kept, missing secrets filled, new template keys appended, after a 0600 backup', async () => {
    const dir = deployment();
    const original = '# mine\nGATEWAY_DOMAIN=crm.example.com\nAPI_SECRET_KEY=' + 'ab'.repeat(32) + '\n';
    writeFileSync(join(dir, '.env'), original, { mode: 0o600 });
    const r = await setup(dir);
    const doc = parseDotenv(readFileSync(join(dir, '.env'), 'utf8'));
    assert.equal(doc.get('GATEWAY_DOMAIN'), 'crm.example.com');
    assert.equal(doc.get('API_SECRET_KEY'), 'ab'.repeat(32));
    assert.ok(r.kept.includes('API_SECRET_KEY'));
    assert.ok(doc.get('CRM_DB_PASSWORD'));
    assert.ok(doc.has('LOG_RETENTION_DAYS'), 'template keys added');
    assert.ok(readFileSync(join(dir, '.env'), 'utf8').startsWith('# mine\n'), "the operator's layout stays first");
    const [backup] = backupsOf(dir);
    assert.ok(backup);
    assert.equal(readFileSync(join(dir, backup), 'utf8'), original);
    assert.equal(mode(join(dir, backup)), 0o600);
  });

  test('--rotate: every generated secret replaced, the old file backed up, the old JWT key kept in the ring', async () => {
    const dir = deployment();
    await setup(dir);
    const old = parseDotenv(readFileSync(join(dir, '.env'), 'utf8'));
    const now = new Date(Date.now() + 1000);
    const r = await setup(dir, { rotate: true, now });
    const doc = parseDotenv(readFileSync(join(dir, '.env'), 'utf8'));
    for (const s of SECRET_SPECS) assert.notEqual(doc.get(s.name), old.get(s.name), `${s.name} rotated`);
    assert.equal(r.generated.length, SECRET_SPECS.length);
    const [backup] = backupsOf(dir);
    assert.ok(backup);
    assert.equal(readFileSync(join(dir, backup), 'utf8'), old.toString());
    const ring = parsePreviousKeys(doc.get('API_SECRET_KEY_PREVIOUS'));
    assert.deepEqual(ring.map((k) => keyId(k.secret)), [keyId(old.get('API_SECRET_KEY') ?? '')]);
    assert.equal(ring[0]?.retireAfter.getTime(), now.getTime() + DAY + 30_000);
  });

  test('an unchanged but world-readable .env has its mode fixed without a rewrite', async () => {
    const dir = deployment();
    await setup(dir);
    chmodSync(join(dir, '.env'), 0o644);
    const r = await setup(dir);
    assert.equal(r.changed, false);
    assert.equal(r.modeTightened, true);
    assert.equal(mode(join(dir, '.env')), 0o600);
  });

  test('a weak secret that is kept is named in a warning (never silently accepted)', async () => {
    const dir = deployment();
    writeFileSync(join(dir, '.env'), 'CRM_DB_PASSWORD=changeme\n', { mode: 0o600 });
    const r = await setup(dir);
    assert.ok(r.warnings.some((w) => /kept CRM_DB_PASSWORD is a default/.test(w)), r.warnings.join('\n'));
    assert.ok(!r.warnings.join('\n').includes('changeme'));
  });
});

describe('setup: bad input overwrites nothing', () => {
  test('a malformed .env: error naming the line; file, backups and secrets untouched', async () => {
    const dir = deployment();
    const text = 'GOOD=1\nthis line is broken\n';
    writeFileSync(join(dir, '.env'), text, { mode: 0o600 });
    await assert.rejects(setup(dir, { rotate: true }), /line 2: not KEY=value/);
    assert.equal(readFileSync(join(dir, '.env'), 'utf8'), text);
    assert.deepEqual(backupsOf(dir), []);
    assert.ok(!existsSync(join(dir, 'secrets')));
  });

  test('an unusable backup key is refused before .env is touched, and kept as is', async () => {
    const dir = deployment();
    mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
    writeFileSync(join(dir, 'secrets', 'backup.key'), 'not-a-key\n', { mode: 0o600 });
    await assert.rejects(setup(dir), /backup key .* is not a hex key/);
    assert.ok(!existsSync(join(dir, '.env')));
    assert.equal(readFileSync(join(dir, 'secrets', 'backup.key'), 'utf8'), 'not-a-key\n');
  });

  test('an unreadable key path (a folder where the file should be) is an error, not a crash later', async () => {
    const dir = deployment();
    mkdirSync(join(dir, 'secrets', 'backup.key'), { recursive: true });
    await assert.rejects(setup(dir), /EISDIR|illegal operation on a directory/);
    assert.ok(!existsSync(join(dir, '.env')));
  });

  test('a missing template is named', async () => {
    const dir = tempDir();
    await assert.rejects(setup(dir, { template: 'nope.example' }), /cannot read the template .*nope\.example: ENOENT/);
  });
});

describe('npx crm-gateway setup (the command)', () => {
  test('`setup production` exits 0, prints names and paths but never a secret value', async () => {
    const dir = deployment();
    const r = await runCli(['setup', 'production'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /created \.env \(mode 600\)/);
    assert.match(r.stdout, /generated: .*API_SECRET_KEY/);
    const doc = parseDotenv(readFileSync(join(dir, '.env'), 'utf8'));
    for (const s of SECRET_SPECS) {
      const v = doc.get(s.name) ?? '';
      assert.ok(!r.stdout.includes(v) && !r.stderr.includes(v), `${s.name} printed`);
    }
    assert.ok(!r.stdout.includes(readFileSync(join(dir, 'secrets', 'backup.key'), 'utf8').trim()));
  });

  test('`setup production` keeping a weak secret exits 1; a malformed .env exits 1 naming the line', async () => {
    const dir = deployment();
    writeFileSync(join(dir, '.env'), 'API_SECRET_KEY=Sh0rtK3yXyz9\n', { mode: 0o600 });
    const weak = await runCli(['setup', 'production'], { cwd: dir });
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /kept API_SECRET_KEY is too short/);
    writeFileSync(join(dir, '.env'), 'oops\n', { mode: 0o600 });
    const bad = await runCli(['setup'], { cwd: dir });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /line 1/);
  });

  test('an unknown mode is a usage error', async () => {
    const r = await runCli(['setup', 'staging'], { cwd: deployment() });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'crm-gateway: error: the mode is development or production, not staging (see crm-gateway setup --help)\n');
  });
});

describe('setup: predictable keys (from the adversarial review of setup, secrets and doctor)', () => {
  async function reviewedDeployment(): Promise<string> {
    const dir = tempDir('crm-gw-review-');
    seedDeployment(dir);
    await runSetup({ cwd: dir, mode: 'production', maxTokenTtlMs: DAY });
    return dir;
  }

  test('setup: an existing predictable backup key is refused before anything is written', async () => {
    const dir = await reviewedDeployment();
    writeFileSync(join(dir, 'secrets', 'backup.key'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    const before = readdirSync(dir).sort();
    const env = readFileSync(join(dir, '.env'), 'utf8');
    await assert.rejects(runSetup({ cwd: dir, rotate: true, maxTokenTtlMs: DAY }), /backup key .* is predictable/);
    assert.deepEqual(readdirSync(dir).sort(), before, 'no backup or temp file was made');
    assert.equal(readFileSync(join(dir, '.env'), 'utf8'), env);
  });
});
