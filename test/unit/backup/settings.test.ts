import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBackupSettings, backupSettings, requireDatabaseUrl } from '../../../src/backup/settings.js';
import { parseConfig, ConfigError } from '../../../src/config/load.js';

const ROUTES = 'routes:\n  - name: api\n    host: api.test.local\n    upstream: http://127.0.0.1:9\n    auth: none\n';

test('without a config file (the compose backup job): the environment alone, with the schema’s defaults', () => {
  const s = loadBackupSettings({ GATEWAY_CONFIG: '/nonexistent/gateway.yaml', DATABASE_URL: 'postgres://u@h/crm' });
  assert.deepEqual({ ...s, s3: undefined }, { enabled: false, schedule: '0 2 * * *', retentionDays: 7, dir: 'backups', keyFile: 'secrets/backup.key', databaseUrl: 'postgres://u@h/crm', s3: undefined });
  assert.deepEqual(s.s3, { region: 'us-east-1', prefix: '' });
  const t = loadBackupSettings({ GATEWAY_CONFIG: '/nonexistent/gateway.yaml', DATABASE_URL: 'postgres://u@h/gateway', BACKUP_DATABASE_URL: 'postgres://u@h/crm', BACKUP_RETENTION_DAYS: '14' });
  assert.equal(t.databaseUrl, 'postgres://u@h/crm', 'BACKUP_DATABASE_URL wins over DATABASE_URL');
  assert.equal(t.retentionDays, 14);
});

test('bad values are reported with the variable that set them', () => {
  assert.throws(
    () => loadBackupSettings({ GATEWAY_CONFIG: '/nonexistent/gateway.yaml', BACKUP_SCHEDULE: 'nightly', BACKUP_DATABASE_URL: 'mysql://x/y', DATABASE_URL: 'http://x' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /backup\.schedule \(from BACKUP_SCHEDULE\): not a cron schedule/);
      assert.match(err.message, /backup\.databaseUrl \(from BACKUP_DATABASE_URL\): use postgres:\/\//);
      assert.match(err.message, /stores\.databaseUrl \(from DATABASE_URL\)/);
      return true;
    },
  );
});

test('with a config file: from it, and an existing but broken file is an error, not a fallback', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crmgw-bset-'));
  try {
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, `${ROUTES}backup:\n  dir: /srv/backups\n`);
    assert.equal(loadBackupSettings({ GATEWAY_CONFIG: file }).dir, '/srv/backups');
    writeFileSync(file, 'routes: [');
    assert.throws(() => loadBackupSettings({ GATEWAY_CONFIG: file }), ConfigError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('S3 settings: bucket, endpoint, region, prefix and the standard AWS credential variables', () => {
  const cfg = parseConfig(ROUTES, {
    BACKUP_S3_BUCKET: 'crm-backups',
    BACKUP_S3_ENDPOINT: 'https://minio.internal:9000',
    BACKUP_S3_PREFIX: 'crm/nightly/',
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret',
  });
  assert.deepEqual(backupSettings(cfg).s3, { bucket: 'crm-backups', endpoint: 'https://minio.internal:9000', region: 'us-east-1', prefix: 'crm/nightly/', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' });
  assert.throws(() => parseConfig(ROUTES, { BACKUP_S3_ENDPOINT: 'https://minio.internal:9000' }), /BACKUP_S3_BUCKET/);
  assert.throws(() => parseConfig(ROUTES, { BACKUP_S3_BUCKET: 'b', AWS_ACCESS_KEY_ID: 'only-one' }), /set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  assert.throws(() => parseConfig(ROUTES, { BACKUP_S3_BUCKET: 'b', BACKUP_S3_ENDPOINT: 'ftp://x' }), /http\(s\) URL/);
  assert.throws(() => parseConfig(ROUTES, { BACKUP_S3_BUCKET: 'b', BACKUP_S3_PREFIX: 'a b' }), /prefix/);
});

test('no database URL at all: BACKUP_CONFIG naming both variables', () => {
  const s = backupSettings(parseConfig(ROUTES, {}));
  assert.throws(() => requireDatabaseUrl(s), /set BACKUP_DATABASE_URL \(or DATABASE_URL\)/);
});
