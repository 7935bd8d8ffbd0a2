import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pgTarget, pgToolEnv } from '../../../src/backup/pg-url.js';

test('the password leaves the URL the tools see, and goes to PGPASSWORD', () => {
  const t = pgTarget('postgresql://crm_user:p%40ss%2Fw0rd@postgres:5432/crm_autonomo?sslmode=verify-full&sslrootcert=/app/pg-ca.crt');
  assert.equal(t.password, 'p@ss/w0rd');
  assert.equal(t.libpqUrl, 'postgresql://crm_user@postgres:5432/crm_autonomo?sslmode=verify-full&sslrootcert=%2Fapp%2Fpg-ca.crt');
  assert.equal(t.display, 'crm_user@postgres:5432/crm_autonomo');
  assert.equal(t.database, 'crm_autonomo');
  const env = pgToolEnv(t, { PATH: '/usr/bin', UNSET: undefined });
  assert.deepEqual(env, { PATH: '/usr/bin', PGPASSWORD: 'p@ss/w0rd', PGCONNECT_TIMEOUT: '10' });
});

test('a password given as a query parameter is moved too; none at all keeps the caller’s PGPASSWORD', () => {
  const t = pgTarget('postgres://u@h/db?password=s3cret&sslmode=require');
  assert.equal(t.password, 's3cret');
  assert.ok(!t.libpqUrl.includes('s3cret'));
  assert.ok(!t.display.includes('s3cret'));
  const bare = pgTarget('postgres://u@h/db');
  assert.equal(bare.password, undefined);
  assert.equal(pgToolEnv(bare, { PGPASSWORD: 'from-env' }).PGPASSWORD, 'from-env');
});

test('not a PostgreSQL URL, or no database: BACKUP_CONFIG', () => {
  assert.throws(() => pgTarget('mysql://h/db'), /must start with postgres:\/\//);
  assert.throws(() => pgTarget('postgres://h:5432/'), /names no database/);
  assert.throws(() => pgTarget('not a url'), /is not a URL/);
});
