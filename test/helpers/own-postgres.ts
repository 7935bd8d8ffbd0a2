import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

/**
 * A PostgreSQL cluster of a test's own (initdb + pg_ctl in a temp folder, on a free loopback
 * port), for tests that stop the database: the shared cluster is never touched.
 */

function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

const BIN = postgresBin();
/** PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user. */
const AS_ROOT = userInfo().uid === 0;
const POSTGRES_USER = AS_ROOT ? spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }) : undefined;
/** Why such a cluster cannot be made here, or false. */
export const OWN_POSTGRES_SKIP = !BIN
  ? 'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)'
  : AS_ROOT && POSTGRES_USER?.status !== 0
    ? 'running as root without a postgres user to own the test cluster'
    : false;

/** A throw-away cluster: initdb once, then start and stop (immediate: as if the server crashed). */
export class OwnPostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(): Promise<OwnPostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-pg-'));
    if (AS_ROOT) chownSync(dir, Number(POSTGRES_USER?.stdout.trim()), -1);
    const pgsql = new OwnPostgres(dir, await freePort());
    pgsql.run('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
    return pgsql;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private run(tool: string, args: string[]): void {
    const cmd = join(BIN as string, tool);
    const r = AS_ROOT ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', timeout: 60_000 }) : spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error?.message}\n${this.log()}`);
  }

  private log(): string {
    try {
      return readFileSync(join(this.dir, 'postgres.log'), 'utf8').slice(-2000);
    } catch {
      return '';
    }
  }

  start(): void {
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`, '-l', join(this.dir, 'postgres.log'), '-w', '-t', '30', 'start']);
  }

  stop(): void {
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', '-t', '30', 'stop']);
  }

  running(): boolean {
    return existsSync(join(this.dir, 'data', 'postmaster.pid'));
  }

  remove(): void {
    if (this.running()) this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
