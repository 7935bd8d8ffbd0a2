import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { testCertificate, type TestCertificate } from '../helpers/harness.js';
import { logLines, request, startGatewayProcess, type GatewayProcess, type PlainResponse } from '../helpers/gateway-process.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Blocks without Redis (embedded mode): the CLI writes DATA_DIR/blocks.json (mode 0600), the
 * running gateway (a real `crm-gateway start` process) watches it and reads it again every
 * second, and a restart reads it back.
 */

let upstream: EchoUpstream;
let cert: TestCertificate;
let ca: string;
let work: string;
let env: Record<string, string>;
let gw: GatewayProcess;

before(async () => {
  upstream = await startEchoUpstream('embedded-upstream');
  cert = await testCertificate();
  ca = readFileSync(cert.cert, 'utf8');
  work = mkdtempSync(join(tmpdir(), 'crm-gw-containment-file-'));
  writeFileSync(join(work, 'gateway.yaml'), `routes:\n  - name: api\n    host: api.test.local\n    upstream: ${upstream.url}\n    auth: none\n`);
  env = { GATEWAY_CONFIG: join(work, 'gateway.yaml'), DATA_DIR: join(work, 'data') };
  gw = await startGatewayProcess(cert, { ...env, LOG_DIR: join(work, 'logs') });
});

after(async () => {
  await gw?.stop();
  await upstream?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const cli = (args: string[]): Promise<CliResult> => runCli(args, { ...env, LOG_DIR: join(work, 'logs-cli') });
const get = (): Promise<PlainResponse> => request(gw.port, ca, { host: 'api.test.local', path: '/x', headers: { accept: 'application/json' } });

async function until(status: number, timeoutMs = 5_000): Promise<number> {
  const start = performance.now();
  await waitFor(async () => (await get()).status === status, `status ${status}`, timeoutMs, 5);
  return performance.now() - start;
}

test('embedded mode: the CLI writes a 0600 file, the running gateway applies it within a second, closes the address\'s websocket, keeps it over a restart, and lifts it on unblock', async (t) => {
  t.after(async () => {
    await cli(['unblock', 'cidr', '127.0.0.0/8']);
  });
  assert.equal((await get()).status, 200);
  const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/ws`, { headers: { host: 'api.test.local' }, ca, servername: 'api.test.local' } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));

  const blocked = await cli(['block', 'cidr', '127.0.0.0/8', '--for', '5m', '--reason', 'embedded test']);
  assert.equal(blocked.code, 0, blocked.stderr);
  const file = join(work, 'data', 'blocks.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const ms = await until(403);
  process.stderr.write(`# containment (embedded): refused ${ms.toFixed(0)} ms after the CLI exited\n`);
  assert.ok(ms < 1_500, `applied ${ms.toFixed(0)} ms after the CLI exited`);
  const seen = upstream.seen.length;
  const res = await get();
  assert.equal(res.json<{ error: { code: string } }>().error.code, 'CLIENT_BLOCKED');
  assert.equal(upstream.seen.length, seen);
  assert.deepEqual(await closed, { code: 1008, reason: 'CLIENT_BLOCKED' });

  // A damaged file lifts nothing: the blocks read before stay in force.
  const good = readFileSync(file, 'utf8');
  writeFileSync(file, '{ not json', { mode: 0o600 });
  await new Promise((r) => setTimeout(r, 1_500));
  assert.equal((await get()).status, 403);
  writeFileSync(file, good, { mode: 0o600 });

  await gw.stop();
  gw = await startGatewayProcess(cert, { ...env, LOG_DIR: join(work, 'logs') });
  assert.equal((await get()).status, 403, 'the block survives a restart');

  const listed = JSON.parse((await cli(['block', 'list', '--json'])).stdout) as { target: string }[];
  assert.deepEqual(listed.map((b) => b.target), ['127.0.0.0/8']);
  assert.equal((await cli(['unblock', 'cidr', '127.0.0.0/8'])).code, 0);
  await until(200);
  assert.ok(logLines(join(work, 'logs'), 'access').some((l) => l.code === 'CLIENT_BLOCKED'));
});

/** What must not reach a terminal; the output's own line breaks aside. */
// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const UNPRINTABLE_BUT_NEWLINE = /[\p{Cf}\u2028\u2029\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u;

/** One writer process: `n` blocks through the built store, as the CLI and the gateway write them. */
function writer(dir: string, id: number, n: number): Promise<void> {
  const dist = (p: string): string => JSON.stringify(pathToFileURL(join(process.cwd(), 'dist', p)).href);
  const script = `
    import { createFileBlockStore } from ${dist('containment/store.js')};
    import { createMemoryLogger } from ${dist('log/logger.js')};
    const [dir, id, n] = process.argv.slice(1);
    const store = createFileBlockStore(dir, { maxMs: 86400000 }, createMemoryLogger());
    for (let i = 0; i < Number(n); i++) {
      const now = Date.now();
      await store.add({ kind: 'ip', target: '10.' + id + '.0.' + i, reason: 'concurrent', until: now + 60000, createdAt: now, by: 'writer' + id, source: 'manual' });
    }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir, String(id), String(n)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${id} exited ${String(code)}: ${err}`))));
  });
}

test('regression: concurrent writers of blocks.json (the CLI, the gateway\'s automatic blocks) lose none of each other\'s blocks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-blocks-writers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const WRITERS = 4;
  const EACH = 40;
  await Promise.all(Array.from({ length: WRITERS }, (_, id) => writer(dir, id, EACH)));
  const file = join(dir, 'blocks.json');
  assert.equal(Object.keys(JSON.parse(readFileSync(file, 'utf8')) as object).length, WRITERS * EACH);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['blocks.json'], 'no temp or lock file left behind');
});

test('regression: block list escapes control and format characters of stored blocks on the operator\'s terminal', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-blocks-escape-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'data'));
  const now = Date.now();
  // As an older version stored an automatic block: the alert message quoted a typed Basic auth name.
  const reason = 'automatic: 5 failed logins for user \u001b]0;owned\u0007\u001b[2J\u009b31m\u202eevil';
  const stored = { kind: 'ip', target: '203.0.113.9', reason, until: now + 60_000, createdAt: now, by: 'auto', source: 'auto', rule: 'failed_logins_user -> ip for 15m' };
  writeFileSync(join(dir, 'data', 'blocks.json'), JSON.stringify({ 'ip:203.0.113.9': stored }), { mode: 0o600 });
  const listEnv = { GATEWAY_CONFIG: env.GATEWAY_CONFIG ?? '', DATA_DIR: join(dir, 'data'), LOG_DIR: join(dir, 'logs') };
  const table = await runCli(['block', 'list'], listEnv);
  assert.equal(table.code, 0, table.stderr);
  assert.doesNotMatch(table.stdout, UNPRINTABLE_BUT_NEWLINE);
  assert.match(table.stdout, /203\.0\.113\.9 .*\\u001b\]0;owned\\u0007\\u001b\[2J\\u009b31m\\u202eevil/);
  const json = await runCli(['block', 'list', '--json'], listEnv);
  assert.doesNotMatch(json.stdout, UNPRINTABLE_BUT_NEWLINE);
  assert.equal((JSON.parse(json.stdout) as { reason: string }[])[0]?.reason, reason, 'the same value in JSON');
});
