import type pg from 'pg';
import { countRows, USER_TABLES_SQL } from './snapshot.js';
import type { TableCount } from './manifest.js';

/** Objects that make a database "not empty": user relations of any kind, and user schemas besides public. */
const EXISTING_OBJECTS_SQL = `
SELECT n.nspname || '.' || c.relname AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'schema ' || n.nspname FROM pg_catalog.pg_namespace n
WHERE n.nspname NOT IN ('public', 'pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1
LIMIT 6`;

/** Up to six of the target's own tables, views, sequences or schemas; empty when there are none. */
export async function existingObjects(client: pg.Client): Promise<string[]> {
  return (await client.query<{ name: string }>(EXISTING_OBJECTS_SQL)).rows.map((r) => r.name);
}

export interface Consistency {
  /** Tables of the manifest whose row count differs, or that are missing (`actual` undefined). */
  differences: { table: string; expected: number; actual: number | undefined }[];
  /** Tables in the target that the backup does not hold (left from before a --force restore). */
  extra: string[];
  tables: number;
  rows: number;
}

/** Tables and exact row counts of the restored database against the manifest. */
export async function checkConsistency(client: pg.Client, expected: readonly TableCount[]): Promise<Consistency> {
  const present = (await client.query<{ schema: string; name: string }>(USER_TABLES_SQL)).rows;
  const key = (t: { schema: string; name: string }): string => `${t.schema}.${t.name}`;
  const presentKeys = new Set(present.map(key));
  const wanted = new Set(expected.map(key));
  const counted = new Map((await countRows(client, present.filter((t) => wanted.has(key(t))))).map((c) => [key(c), c.rows]));
  const differences = expected
    .filter((t) => !presentKeys.has(key(t)) || counted.get(key(t)) !== t.rows)
    .map((t) => ({ table: key(t), expected: t.rows, actual: counted.get(key(t)) }));
  return {
    differences,
    extra: present.map(key).filter((k) => !wanted.has(k)),
    tables: expected.length,
    rows: [...counted.values()].reduce((a, b) => a + b, 0),
  };
}
