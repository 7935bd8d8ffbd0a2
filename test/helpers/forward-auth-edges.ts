import assert from 'node:assert/strict';
import https from 'node:https';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { REPO, tempDir } from './deployment.js';
import { freePort } from './ports.js';
import { testCertificate, type RequestOptions, type TestResponse } from './harness.js';
import { waitFor } from './auth-gateway.js';

/**
 * Real edge proxies for forward-auth tests: nginx from the shipped nginx/forward-auth.conf and
 * Caddy from docs/forward-auth.Caddyfile, with only names, ports and certificate paths changed,
 * in temp directories (never /etc). Both use the harness certificate.
 */
export const NGINX = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim();
export const CADDY = spawnSync('sh', ['-c', 'command -v caddy'], { encoding: 'utf8' }).stdout.trim();

export interface EdgeTarget {
  /** The gateway's HTTPS port. */
  gatewayPort: number;
  /** The app's port (the stand-in app the edge proxies to). */
  appPort: number;
  /** The app's host name (replaces app.example.com). */
  appHost: string;
  /** forwardAuth.host (replaces auth.example.com). */
  authHost: string;
  /** The edge's port; a free one when absent. */
  port?: number;
}

export interface Edge {
  readonly port: number;
  stop(): void;
}

async function listening(port: number, what: string, proc: ChildProcess): Promise<void> {
  const up = await waitFor(
    () => new Promise<boolean>((r) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false))),
    15_000,
    100,
  );
  if (!up) {
    proc.kill('SIGKILL');
    throw new Error(`${what} did not listen within 15 s`);
  }
}

function names(text: string, t: EdgeTarget): string {
  return text
    .replaceAll('app.example.com', t.appHost)
    .replaceAll('auth.example.com', t.authHost)
    .replaceAll('127.0.0.1:8443', `127.0.0.1:${t.gatewayPort}`)
    .replaceAll('127.0.0.1:3000', `127.0.0.1:${t.appPort}`);
}

export async function startNginx(t: EdgeTarget): Promise<Edge> {
  const cert = await testCertificate();
  const prefix = tempDir('crm-gw-fa-nginx-');
  for (const d of ['certs', 'logs', 'run']) mkdirSync(join(prefix, d));
  copyFileSync(cert.cert, join(prefix, 'certs', 'edge.crt'));
  copyFileSync(cert.key, join(prefix, 'certs', 'edge.key'));
  copyFileSync(cert.cert, join(prefix, 'certs', 'gateway.crt'));
  const port = t.port ?? (await freePort());
  const conf = names(readFileSync(join(REPO, 'nginx', 'forward-auth.conf'), 'utf8'), t)
    .replace('listen 443 ssl http2;', `listen 127.0.0.1:${port} ssl http2;`)
    .replace('worker_processes auto;', 'worker_processes 1;');
  writeFileSync(join(prefix, 'edge.conf'), conf);
  const check = spawnSync(NGINX, ['-e', 'stderr', '-t', '-p', `${prefix}/`, '-c', join(prefix, 'edge.conf')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  const proc = spawn(NGINX, ['-e', 'stderr', '-p', `${prefix}/`, '-c', join(prefix, 'edge.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  await listening(port, 'nginx', proc);
  return { port, stop: () => proc.kill('SIGQUIT') };
}

export async function startCaddy(t: EdgeTarget): Promise<Edge> {
  const cert = await testCertificate();
  const dir = tempDir('crm-gw-fa-caddy-');
  const port = t.port ?? (await freePort());
  const file = names(readFileSync(join(REPO, 'docs', 'forward-auth.Caddyfile'), 'utf8'), t)
    .replaceAll('certs/gateway.crt', cert.cert)
    .replace(`\n${t.appHost} {`, `\n{\n\tadmin off\n\tauto_https off\n}\n\nhttps://${t.appHost}:${port} {\n\ttls ${cert.cert} ${cert.key}`);
  const conf = join(dir, 'Caddyfile');
  writeFileSync(conf, file);
  // Caddy keeps state under HOME / XDG dirs: a temp one, never the user's.
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
  const check = spawnSync(CADDY, ['validate', '--config', conf, '--adapter', 'caddyfile'], { encoding: 'utf8', timeout: 30_000, env, cwd: dir });
  assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  const proc = spawn(CADDY, ['run', '--config', conf, '--adapter', 'caddyfile'], { stdio: 'ignore', env, cwd: dir });
  await listening(port, 'caddy', proc);
  return { port, stop: () => proc.kill('SIGTERM') };
}

/** An HTTPS request from a chosen loopback source address (another "machine" than the edge). */
export function requestFrom(localAddress: string, port: number, ca: string, opts: RequestOptions): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const host = opts.host ?? 'auth.test.local';
    const req = https.request(
      { host: '127.0.0.1', port, localAddress, method: opts.method ?? 'GET', path: opts.path, ca, servername: host, headers: { host, ...opts.headers }, agent: false, checkServerIdentity: () => undefined },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
