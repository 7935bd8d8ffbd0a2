// Shared by the backup tests (integration/backup-*, unit/backup/): real PostgreSQL databases
// with unique names (dropped after), a temp workspace with a key of mode 0600 in a 0700 folder apart from the backups,
// and the CLI run from source through tsx.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { BackupSettings } from '../../src/backup/settings.js';
import { DEFAULTS } from '../../src/config/schema.js';

export const PG_HOST = '127.0.0.1:5432';
const ADMIN_URL = `postgres://postgres@${PG_HOST}/postgres`;
const CLI_TIMEOUT_MS = 120_000;

export interface TestDb {
  name: string;
  url: string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  drop(): Promise<void>;
}

/** A fresh database `crmgw_bk_<tag>_<random>`, dropped (WITH FORCE) by `drop`. */
export async function createDb(tag: string): Promise<TestDb> {
  const name = `crmgw_bk_${tag}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
  } finally {
    await admin.end();
  }
  const url = `postgres://postgres@${PG_HOST}/${name}`;
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  return {
    name,
    url,
    query: (sql, params) => pool.query(sql, params),
    drop: async () => {
      await pool.end();
      const a = new pg.Client({ connectionString: ADMIN_URL });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** Text that breaks naive encodings: accents, scripts, emoji with modifiers, RTL, control-ish characters. */
export const NON_ASCII = [
  'José Ñúñez Peña',
  'Zoë Šťastná-Łukasiewicz',
  '東京太郎 (とうきょう)',
  'Ελένη Παπαδοπούλου',
  'Мария Иванова',
  'مرحبا بالعالم',
  '🎉👍🏽 família 👨‍👩‍👧',
  'line one\nline two\ttab \'single\' "double" back\\slash',
  'e\u0301 combining, zero\u200bwidth',
];

/**
 * A small CRM: two schemas, foreign keys, identity and serial columns, arrays, jsonb, bytea,
 * numeric, NULLs, a partitioned table, a view, an index, and `messages` rows in bulk.
 */
export async function seedCrm(db: TestDb, messages = 5_000): Promise<void> {
  await db.query(`
    CREATE SCHEMA sales;
    CREATE TABLE public.contacts (
      id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE, phone text, tags text[], meta jsonb,
      avatar bytea, balance numeric(12,2), created_at timestamptz NOT NULL DEFAULT '2025-01-31 02:00:00+00', active boolean);
    CREATE TABLE public.messages (id bigserial PRIMARY KEY, contact_id bigint NOT NULL REFERENCES public.contacts(id), body text, sent_at timestamptz);
    CREATE INDEX messages_contact ON public.messages (contact_id);
    CREATE TABLE sales.deals (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, contact_id bigint REFERENCES public.contacts(id), title text, amount numeric, stage text CHECK (stage IN ('lead', 'won', 'lost')));
    CREATE TABLE public.empty_table (id int);
    CREATE TABLE public.events (id int, at date NOT NULL, payload text) PARTITION BY RANGE (at);
    CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE VIEW public.contact_summary AS SELECT c.id, c.name, count(m.id) AS messages FROM public.contacts c LEFT JOIN public.messages m ON m.contact_id = c.id GROUP BY c.id;
  `);
  for (const [i, name] of NON_ASCII.entries()) {
    await db.query(`INSERT INTO public.contacts (name, email, phone, tags, meta, avatar, balance, active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
      name,
      i % 3 === 0 ? null : `c${i}@example.test`,
      i % 2 === 0 ? `+34 600 00${i} 0${i}` : null,
      [name.slice(0, 3), 'ñ', '✓'],
      { name, i, nested: { list: [1, 'dos', null] } },
      i % 2 === 0 ? Buffer.from([0, 1, 2, 255, i]) : null,
      (i * 1234.56).toFixed(2),
      i % 4 === 0 ? null : i % 2 === 0,
    ]);
  }
  await db.query(`INSERT INTO public.messages (contact_id, body, sent_at) SELECT 1 + g % ${NON_ASCII.length}, 'mensaje nº ' || g || ' — ' || md5(g::text), '2025-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, $1) g`, [messages]);
  await db.query(`INSERT INTO sales.deals (contact_id, title, amount, stage) VALUES (1, 'Contrato año 2025', 12345.678, 'won'), (2, 'Ampliación — fase 2', NULL, 'lead'), (NULL, '見積もり', 0.01, 'lost')`);
  await db.query(`INSERT INTO public.events (id, at, payload) SELECT g, '2024-06-01'::date + g, 'evento ' || g FROM generate_series(1, 400) g`);
}

/** Every user table's row count and a hash of its rows in a stable order: equal maps mean identical contents. */
export async function tableDigests(db: TestDb): Promise<Map<string, { rows: number; md5: string }>> {
  const { rows: tables } = await db.query<{ s: string; t: string }>(
    `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname IN ('public', 'sales') ORDER BY 1, 2`,
  );
  const out = new Map<string, { rows: number; md5: string }>();
  for (const { s, t } of tables) {
    const { rows } = await db.query<{ n: string; h: string | null }>(`SELECT count(*) AS n, md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS h FROM ONLY "${s}"."${t}" x`);
    out.set(`${s}.${t}`, { rows: Number(rows[0]?.n), md5: rows[0]?.h ?? '' });
  }
  return out;
}

export interface Workspace {
  dir: string;
  backupDir: string;
  keyFile: string;
  settings(databaseUrl: string | undefined, extra?: Partial<BackupSettings>): BackupSettings;
  /** A second, different key in its own file. */
  otherKeyFile(): string;
  cleanup(): void;
}

function writeKey(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const file = join(dir, 'backup.key');
  writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return file;
}

/** A temp folder with `backups/` and `secrets/backup.key` (never the repo's own). */
export function workspace(): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'crmgw-backup-'));
  const backupDir = join(dir, 'backups');
  const keyFile = writeKey(join(dir, 'secrets'));
  return {
    dir,
    backupDir,
    keyFile,
    settings: (databaseUrl, extra = {}) => ({
      enabled: true,
      schedule: DEFAULTS.backupSchedule,
      retentionDays: DEFAULTS.backupRetentionDays,
      dir: backupDir,
      keyFile,
      databaseUrl,
      s3: { region: DEFAULTS.backupS3Region, prefix: '' },
      ...extra,
    }),
    otherKeyFile: () => writeKey(join(dir, `other-${randomBytes(3).toString('hex')}`)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `crm-gateway <args>` from the TypeScript source (no build needed), with only `env` (plus PATH and HOME). */
export function runBackupCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { run } from './src/cli/main.ts'; process.exitCode = await run(process.argv.slice(1));`, ...args], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', GATEWAY_CONFIG: '/nonexistent/gateway.yaml', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
