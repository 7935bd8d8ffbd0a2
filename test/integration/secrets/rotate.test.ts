import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { runSetup } from '../../../src/secrets/setup.js';
import { rotateSecrets, secretsDue } from '../../../src/secrets/rotate.js';
import { parseDotenv, type DotenvDocument } from '../../../src/secrets/dotenv.js';
import { keyId, parsePreviousKeys } from '../../../src/secrets/keyring.js';
import { KeyRing } from '../../../src/auth/keyring.js';
import { runCli, seedDeployment, tempDir } from '../../helpers/deployment.js';

const HOUR = 3_600_000;
const read = (dir: string): DotenvDocument => parseDotenv(readFileSync(join(dir, '.env'), 'utf8'));
const backups = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('.env.backup-'));

async function deployment(): Promise<string> {
  const dir = tempDir();
  seedDeployment(dir);
  await runSetup({ cwd: dir, maxTokenTtlMs: 24 * HOUR });
  return dir;
}

/** A token as the gateway signs it: HS256, kid in the header. */
function sign(secret: string, ttlSeconds: number): string {
  return jwt.sign({ sub: 'alice', roles: ['api'] }, secret, { algorithm: 'HS256', expiresIn: ttlSeconds, keyid: keyId(secret), issuer: 'crm-gateway', audience: 'crm' });
}

/** Verifies as the gateway does: pick the key by kid from the ring in .env, then check the signature. */
function verifyWithEnv(doc: DotenvDocument, token: string, now = new Date()): jwt.JwtPayload {
  const ring = new KeyRing(doc.get('API_SECRET_KEY') ?? '', parsePreviousKeys(doc.get('API_SECRET_KEY_PREVIOUS')));
  const kid = jwt.decode(token, { complete: true })?.header.kid;
  const key = ring.lookup(kid, now);
  if (!key) throw new Error(`no live key for kid ${String(kid)}`);
  return jwt.verify(token, key.key, { algorithms: ['HS256'], issuer: 'crm-gateway', audience: 'crm' }) as jwt.JwtPayload;
}

describe('secrets rotate-jwt: tokens signed before the rotation stay valid', () => {
  test('a token from the old key verifies after rotation; new tokens use the new key', async () => {
    const dir = await deployment();
    const before = read(dir);
    const oldSecret = before.get('API_SECRET_KEY') ?? '';
    const oldToken = sign(oldSecret, 3600);

    const now = new Date();
    const r = rotateSecrets({ cwd: dir, maxTokenTtlMs: 24 * HOUR, now });
    const after = read(dir);
    assert.notEqual(after.get('API_SECRET_KEY'), oldSecret);
    assert.equal(r.jwt?.oldKid, keyId(oldSecret));
    assert.equal(r.jwt?.newKid, keyId(after.get('API_SECRET_KEY') ?? ''));
    assert.equal(after.createdAt('API_SECRET_KEY')?.toISOString(), now.toISOString());

    const ring = parsePreviousKeys(after.get('API_SECRET_KEY_PREVIOUS'));
    assert.equal(ring.length, 1);
    assert.equal(keyId(ring[0]?.secret ?? ''), keyId(oldSecret));
    assert.equal(ring[0]?.retireAfter.toISOString(), new Date(now.getTime() + 24 * HOUR + 30_000).toISOString());

    assert.equal(verifyWithEnv(after, oldToken).sub, 'alice', 'old token still valid');
    const newToken = sign(after.get('API_SECRET_KEY') ?? '', 600);
    assert.equal(verifyWithEnv(after, newToken).sub, 'alice');
    // Once every token the old key signed has expired, the old key stops verifying.
    assert.throws(() => verifyWithEnv(after, oldToken, new Date(now.getTime() + 24 * HOUR + 31_000)), /no live key/);
  });

  test('each rotation backs up the file (0600) and drops keys past their retire-after time', async () => {
    const dir = await deployment();
    const t0 = new Date();
    rotateSecrets({ cwd: dir, maxTokenTtlMs: HOUR, now: t0 });
    rotateSecrets({ cwd: dir, maxTokenTtlMs: HOUR, now: new Date(t0.getTime() + 1000) });
    assert.equal(parsePreviousKeys(read(dir).get('API_SECRET_KEY_PREVIOUS')).length, 2, 'both earlier keys still live');
    const r = rotateSecrets({ cwd: dir, maxTokenTtlMs: HOUR, now: new Date(t0.getTime() + 2 * HOUR) });
    assert.equal(r.jwt?.dropped, 2);
    assert.equal(parsePreviousKeys(read(dir).get('API_SECRET_KEY_PREVIOUS')).length, 1, 'only the key just replaced');
    const files = backups(dir);
    assert.equal(files.length, 3);
    for (const f of files) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600);
  });

  test('--no-grace: the old key stops verifying at once', async () => {
    const dir = await deployment();
    const oldToken = sign(read(dir).get('API_SECRET_KEY') ?? '', 3600);
    rotateSecrets({ cwd: dir, maxTokenTtlMs: HOUR, grace: false });
    assert.equal(read(dir).get('API_SECRET_KEY_PREVIOUS'), '');
    assert.throws(() => verifyWithEnv(read(dir), oldToken), /no live key/);
  });

  test('a malformed ring is refused with its position; the file is untouched', async () => {
    const dir = await deployment();
    const path = join(dir, '.env');
    writeFileSync(path, `${readFileSync(path, 'utf8')}`.replace('API_SECRET_KEY_PREVIOUS=', 'API_SECRET_KEY_PREVIOUS=garbage'));
    const before = readFileSync(path, 'utf8');
    assert.throws(() => rotateSecrets({ cwd: dir, maxTokenTtlMs: HOUR }), /entry 1/);
    assert.equal(readFileSync(path, 'utf8'), before);
  });
});

describe('secrets rotate: webhook app secret and the steps for the rest', () => {
  test('stdin gives the new app secret; the current one becomes PREVIOUS; steps printed; nothing secret printed', async () => {
    const dir = await deployment();
    const path = join(dir, '.env');
    const current = 'a1'.repeat(16);
    writeFileSync(path, readFileSync(path, 'utf8').replace('WHATSAPP_APP_SECRET=\n', `WHATSAPP_APP_SECRET=${current}\n`));
    const fresh = 'b2'.repeat(16);
    const r = await runCli(['secrets', 'rotate', '--whatsapp-app-secret-from-stdin'], { cwd: dir, stdin: `${fresh}\n` });
    assert.equal(r.code, 0, r.stderr);
    const doc = read(dir);
    assert.equal(doc.get('WHATSAPP_APP_SECRET'), fresh);
    assert.equal(doc.get('WHATSAPP_APP_SECRET_PREVIOUS'), current);
    assert.ok(doc.createdAt('WHATSAPP_APP_SECRET'));
    for (const step of ['CRM_DB_PASSWORD', 'ALTER USER crm_user', 'REDIS_PASSWORD', 'NOCODB_JWT_SECRET', '--force-recreate']) assert.ok(r.stdout.includes(step), step);
    assert.match(r.stdout, /JWT key ring: new current key [0-9a-f]{16}/);
    for (const v of [fresh, current, doc.get('API_SECRET_KEY') ?? '', doc.get('CRM_DB_PASSWORD') ?? '']) assert.ok(!r.stdout.includes(v));

    const drop = await runCli(['secrets', 'rotate', '--drop-whatsapp-previous', '--skip-jwt'], { cwd: dir });
    assert.equal(drop.code, 0, drop.stderr);
    assert.equal(read(dir).get('WHATSAPP_APP_SECRET_PREVIOUS'), '');
    assert.equal(read(dir).get('API_SECRET_KEY'), doc.get('API_SECRET_KEY'), '--skip-jwt left the ring alone');
  });

  test('a pasted app secret that is too short or the same as the current one is refused', async () => {
    const dir = await deployment();
    const before = readFileSync(join(dir, '.env'), 'utf8');
    const r = await runCli(['secrets', 'rotate', '--whatsapp-app-secret-from-stdin', '--skip-jwt'], { cwd: dir, stdin: 'abc\n' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /32 or more letters and digits/);
    assert.equal(readFileSync(join(dir, '.env'), 'utf8'), before);
  });

  test('secrets generate NAME: only that secret changes, with a backup', async () => {
    const dir = await deployment();
    const before = read(dir);
    const r = await runCli(['secrets', 'generate', 'CRM_DB_PASSWORD'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const after = read(dir);
    assert.notEqual(after.get('CRM_DB_PASSWORD'), before.get('CRM_DB_PASSWORD'));
    assert.match(after.get('CRM_DB_PASSWORD') ?? '', /^[A-Za-z0-9]{32}$/);
    assert.equal(after.get('REDIS_PASSWORD'), before.get('REDIS_PASSWORD'));
    assert.equal(after.get('API_SECRET_KEY'), before.get('API_SECRET_KEY'));
    assert.equal(backups(dir).length, 1);
    const unknown = await runCli(['secrets', 'generate', 'NOT_A_SECRET'], { cwd: dir });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /NOT_A_SECRET is not a secret setup generates/);
  });

  test('secretsDue: older than 90 days or of unknown age', async () => {
    const dir = await deployment();
    const doc = read(dir);
    assert.deepEqual(secretsDue(doc), []);
    assert.equal(secretsDue(doc, new Date(Date.now() + 91 * 24 * HOUR)).length, 8);
  });

  test('without a .env: a clear error', async () => {
    const r = await runCli(['secrets', 'rotate-jwt'], { cwd: tempDir() });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not exist: run `npx crm-gateway setup` first/);
  });
});
