import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

/**
 * A real ACME server for tests: Debian's pebble, validating against the ports given, with
 * pebble-challtestsrv as its DNS server answering 127.0.0.1 for every name (IPv6 off, so the
 * validation never tries ::1). Pebble's own HTTPS certificate comes from a CA made here with
 * openssl; `caFile` is what ACME_CA_FILE needs to trust the directory.
 */
export interface Pebble {
  readonly directoryUrl: string;
  /** The CA of pebble's own HTTPS listener (for ACME_CA_FILE). */
  readonly caFile: string;
  readonly httpPort: number;
  readonly tlsPort: number;
  readonly dir: string;
  /** The root that signs the certificates pebble issues (regenerated at each start). */
  issuingRoot(): Promise<string>;
  /** Makes challtestsrv answer `host` with `address` (e.g. 127.0.0.2, where nothing listens). */
  setAddress(host: string, address: string): Promise<void>;
  /** Everything pebble printed (its log names each order). */
  output(): string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Issued certificates' lifetime, seconds (pebble's certificateValidityPeriod). */
  validitySeconds?: number;
  httpPort?: number;
  tlsPort?: number;
}

const STARTUP_MS = 10_000;

function pebbleCa(dir: string): { caFile: string; cert: string; key: string } {
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=pebble test CA', '-days', '2']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'pebble.key', '-out', 'pebble.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(['x509', '-req', '-in', 'pebble.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'pebble.crt', '-days', '2', '-extfile', 'san.ext']);
  return { caFile: join(dir, 'ca.crt'), cert: join(dir, 'pebble.crt'), key: join(dir, 'pebble.key') };
}

function getText(url: string, ca: string): Promise<{ status: number; body: string }> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ca, agent: false, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

export async function startPebble(opts: PebbleOptions = {}): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-pebble-'));
  const ca = pebbleCa(dir);
  const caPem = readFileSync(ca.caFile, 'utf8');
  const [dnsPort, challMgmt, port, mgmt] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const httpPort = opts.httpPort ?? (await freePort());
  const tlsPort = opts.tlsPort ?? (await freePort());
  writeFileSync(
    join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: ca.cert,
        privateKey: ca.key,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
      },
    }),
  );
  let out = '';
  const chall = spawn('pebble-challtestsrv', ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challMgmt}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  // No nonce rejections and no authorization reuse: every order validates every name, every time.
  const pebble = spawn('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
  });
  for (const c of [chall, pebble]) {
    c.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  }
  const stop = async (): Promise<void> => {
    for (const c of [pebble, chall]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all([exited(pebble), exited(chall)]);
    rmSync(dir, { recursive: true, force: true });
  };
  const directoryUrl = `https://127.0.0.1:${port}/dir`;
  const deadline = Date.now() + STARTUP_MS;
  for (;;) {
    const ok = await getText(directoryUrl, caPem).then((r) => r.status === 200, () => false);
    const challOk = await getText(`http://127.0.0.1:${challMgmt}/`, caPem).then(() => true, () => false);
    if (ok && challOk) break;
    if (Date.now() > deadline || pebble.exitCode !== null || chall.exitCode !== null) {
      await stop();
      throw new Error(`pebble did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    directoryUrl,
    caFile: ca.caFile,
    httpPort,
    tlsPort,
    dir,
    issuingRoot: async () => (await getText(`https://127.0.0.1:${mgmt}/roots/0`, caPem)).body,
    setAddress: async (host, address) => {
      await new Promise<void>((resolve, reject) => {
        const req = http.request(`http://127.0.0.1:${challMgmt}/add-a`, { method: 'POST' }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`add-a: ${res.statusCode}`))));
        });
        req.once('error', reject);
        req.end(JSON.stringify({ host, addresses: [address] }));
      });
    },
    output: () => out,
    stop,
  };
}
