import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { LOG_FILE_MODE } from './fs-tap.js';

/**
 * Where each file of each chain ended, kept outside the file itself. Verification compares the
 * files with these records: a day deleted, or a tail cut (even with the chain rewritten to
 * match), no longer matches what was recorded as written.
 */
export interface HeadRecord {
  readonly chain: string;
  /** Plain file name (`access-2025-01-31.log`); the same after gzip. */
  readonly file: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly updatedAt: string;
  /** Set when retention removed the file: its absence is then expected. */
  readonly removedAt?: string | undefined;
}

export interface HeadStore {
  /** Where the records live, for messages (`PostgreSQL`, a file path). */
  readonly where: string;
  save(records: readonly HeadRecord[]): Promise<void>;
  markRemoved(chain: string, file: string, at: string): Promise<void>;
  load(): Promise<HeadRecord[]>;
}

/** Local copy, next to the logs. It catches accidents; an intruder with the folder can edit it too. */
export const HEADS_FILE = '.chain-heads.json';

export class FileHeadStore implements HeadStore {
  readonly where: string;
  private records = new Map<string, HeadRecord>();
  private loaded = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.where = join(dir, HEADS_FILE);
  }

  async load(): Promise<HeadRecord[]> {
    if (!this.loaded) {
      try {
        const doc = JSON.parse(await readFile(this.where, 'utf8')) as { records?: HeadRecord[] };
        for (const r of doc.records ?? []) this.records.set(`${r.chain}/${r.file}`, r);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${this.where}: ${(err as Error).message}`);
      }
      this.loaded = true;
    }
    return [...this.records.values()];
  }

  async save(records: readonly HeadRecord[]): Promise<void> {
    await this.load();
    for (const r of records) {
      const prev = this.records.get(`${r.chain}/${r.file}`);
      this.records.set(`${r.chain}/${r.file}`, { ...r, firstSeq: Math.min(r.firstSeq, prev?.firstSeq ?? r.firstSeq) });
    }
    await this.persist();
  }

  async markRemoved(chain: string, file: string, at: string): Promise<void> {
    await this.load();
    const r = this.records.get(`${chain}/${file}`);
    if (!r) return;
    this.records.set(`${chain}/${file}`, { ...r, removedAt: at });
    await this.persist();
  }

  /** Writes are serialized, each to a temporary file renamed over the old one. */
  private persist(): Promise<void> {
    this.writing = this.writing.then(async () => {
      const tmp = `${this.where}.tmp`;
      await writeFile(tmp, `${JSON.stringify({ version: 1, records: [...this.records.values()] }, null, 1)}\n`, { mode: LOG_FILE_MODE });
      await rename(tmp, this.where);
    });
    return this.writing;
  }
}

export const HEADS_TABLE = 'gateway_audit_chain_heads';

/** The record in PostgreSQL, per gateway node, so that several hosts can share one database. */
export class PostgresHeadStore implements HeadStore {
  readonly where = `PostgreSQL table ${HEADS_TABLE}`;
  constructor(
    private readonly pool: pg.Pool,
    private readonly node: string,
  ) {}

  async save(records: readonly HeadRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.pool.query(
      `INSERT INTO ${HEADS_TABLE} (node, chain, file, first_seq, last_seq, last_hash, updated_at)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::timestamptz[])
       ON CONFLICT (node, chain, file) DO UPDATE SET
         first_seq = LEAST(${HEADS_TABLE}.first_seq, EXCLUDED.first_seq),
         last_seq = GREATEST(${HEADS_TABLE}.last_seq, EXCLUDED.last_seq),
         last_hash = CASE WHEN EXCLUDED.last_seq >= ${HEADS_TABLE}.last_seq THEN EXCLUDED.last_hash ELSE ${HEADS_TABLE}.last_hash END,
         updated_at = EXCLUDED.updated_at`,
      [
        this.node,
        records.map((r) => r.chain),
        records.map((r) => r.file),
        records.map((r) => r.firstSeq),
        records.map((r) => r.lastSeq),
        records.map((r) => r.lastHash),
        records.map((r) => r.updatedAt),
      ],
    );
  }

  async markRemoved(chain: string, file: string, at: string): Promise<void> {
    await this.pool.query(`UPDATE ${HEADS_TABLE} SET removed_at = $4 WHERE node = $1 AND chain = $2 AND file = $3`, [this.node, chain, file, at]);
  }

  async load(): Promise<HeadRecord[]> {
    const { rows } = await this.pool.query<{ chain: string; file: string; first_seq: string; last_seq: string; last_hash: string; updated_at: Date; removed_at: Date | null }>(
      `SELECT chain, file, first_seq, last_seq, last_hash, updated_at, removed_at FROM ${HEADS_TABLE} WHERE node = $1`,
      [this.node],
    );
    return rows.map((r) => ({
      chain: r.chain,
      file: r.file,
      firstSeq: Number(r.first_seq),
      lastSeq: Number(r.last_seq),
      lastHash: r.last_hash,
      updatedAt: r.updated_at.toISOString(),
      removedAt: r.removed_at?.toISOString(),
    }));
  }
}
