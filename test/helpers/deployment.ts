/**
 * Real pieces of a deployment for the secrets / doctor tests: temp folders, a private CA and
 * certificates made by openssl, a password-protected redis-server of our own, and the CLI run
 * as a child process (exit codes, stdin, what it prints).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

export { freePort };

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const TSX = import.meta.resolve('tsx');
const CLI_MAIN = new URL('../../src/cli/main.ts', import.meta.url).href;
/** Longest a CLI child may run before the test fails. */
const CLI_TIMEOUT_MS = 60_000;

const dirs: string[] = [];
process.once('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp folder, removed when the test process exits. */
export function tempDir(prefix = 'crm-gw-deploy-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr || r.error?.message}`);
}

export interface TestCa {
  dir: string;
  caCert: string;
  /** A certificate signed by the CA (not self-signed) for `names`, valid `days`. Returns PEM paths. */
  issue(names: readonly string[], days: number, opts?: { rsaBits?: number }): { cert: string; key: string };
}

let ca: TestCa | undefined;

/** A private CA made once per test process. */
export function testCa(): TestCa {
  if (ca) return ca;
  const dir = tempDir('crm-gw-ca-');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=crm-gateway test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  let n = 0;
  ca = {
    dir,
    caCert: join(dir, 'ca.crt'),
    issue(names, days, opts = {}) {
      n += 1;
      const base = `leaf${n}`;
      const keyArgs = opts.rsaBits ? ['-newkey', `rsa:${opts.rsaBits}`] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
      openssl(['req', ...keyArgs, '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`], dir);
      writeFileSync(join(dir, `${base}.ext`), `subjectAltName=${names.map((h) => `DNS:${h}`).join(',')}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n`);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${base}.crt`, '-days', String(days), '-extfile', `${base}.ext`], dir);
      return { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
    },
  };
  return ca;
}

export interface PasswordRedis {
  url: string;
  password: string;
  stop(): void;
}

/** A redis-server of our own on loopback with --requirepass; waits (bounded) until it answers. */
export async function startPasswordRedis(password: string): Promise<PasswordRedis> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const answered = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('-NOAUTH'));
      });
      s.once('error', () => resolve(false));
      s.setTimeout(1_000, () => {
        s.destroy();
        resolve(false);
      });
    });
    if (answered) break;
    if (Date.now() > deadline) {
      child.kill();
      throw new Error('redis-server did not start within 10 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `redis://127.0.0.1:${port}`, password, stop: () => child.kill() };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `crm-gateway <args>` in a child process (TypeScript through tsx) in `cwd`, with exactly
 * `env` (plus PATH), feeding `stdin`. Asynchronous, so an in-process server can answer it.
 */
export function runCli(args: readonly string[], opts: { cwd: string; env?: Record<string, string>; stdin?: string }): Promise<CliResult> {
  const code = `const m = await import(${JSON.stringify(CLI_MAIN)}); process.exitCode = await m.run(${JSON.stringify(args)});`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', code], {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crm-gateway ${args.join(' ')} did not finish within ${CLI_TIMEOUT_MS} ms\n${stderr}`));
    }, CLI_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve({ code: c, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Copies the repo's template and default routes into a deployment folder. */
export function seedDeployment(dir: string): void {
  writeFileSync(join(dir, '.env.example'), readFileSync(join(REPO, '.env.example')));
  mkdirSync(join(dir, 'config'), { recursive: true });
  writeFileSync(join(dir, 'config', 'gateway.yaml'), readFileSync(join(REPO, 'config', 'gateway.yaml')));
}
