import type { TestContext } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { testCertificate, testEnv } from './harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  connections: number;
}

export interface GatewayChild {
  readonly port: number;
  /** Full GC in the gateway process (several passes), then its memory and open connections. */
  measure(): Promise<Memory>;
}

/**
 * The gateway (src/main.ts) in a child process started with --expose-gc, so a test's own memory
 * is not counted: on an IPC `measure` message it collects garbage (several passes) and reports
 * its memory and open connections. One `api` route (auth none) to `upstreamUrl`, plus `routeExtra`.
 */
export async function startGcGateway(t: TestContext, upstreamUrl: string, routeExtra = ''): Promise<GatewayChild> {
  const cert = await testCertificate();
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-leak-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(join(work, 'gateway.yaml'), `routes:\n  - name: api\n    host: api.test.local\n    upstream: ${upstreamUrl}\n    auth: none\n${routeExtra}`);
  const code = `
    const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'src/main.ts')).href)});
    const running = await main();
    const connections = () => new Promise((r) => running.httpsServer.getConnections((_e, n) => r(n ?? -1)));
    process.on('message', async (m) => {
      if (m !== 'measure') return;
      for (let i = 0; i < 4; i++) {
        globalThis.gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      const u = process.memoryUsage();
      process.send({ rss: u.rss, heapUsed: u.heapUsed, external: u.external, connections: await connections() });
    });
    process.send({ port: running.ports.https });
  `;
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      GATEWAY_CONFIG: join(work, 'gateway.yaml'),
      GATEWAY_ENV: 'development',
      ...testEnv(cert),
      LOG_DIR: join(work, 'logs'),
      LOG_HASH_KEY: 'leak-test-hash-key-0123456789abcdef',
      DATA_DIR: join(work, 'data'),
    },
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-20_000)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${stderr}`)), 30_000);
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      resolve(m.port);
    });
    child.once('exit', () => reject(new Error(`gateway exited:\n${stderr}`)));
  });
  return {
    port,
    measure: () =>
      new Promise<Memory>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no memory report within 10 s')), 10_000);
        child.once('message', (m: Memory) => {
          clearTimeout(timer);
          resolve(m);
        });
        child.send('measure');
      }),
  };
}
