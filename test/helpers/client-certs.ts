/**
 * Test CAs made by openssl (as test/helpers/deployment.ts does): one shaped like Meta's
 * outbound CA, issuing client certificates like the one Meta presents on webhook deliveries,
 * and the wrong ones (another CN, expired, another CA). `openssl ca` sets exact dates, so an
 * expired certificate needs no clock tricks.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './deployment.js';

export const META_CN = 'client.webhooks.fbclientcerts.com';

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr || r.error?.message}`);
}

/** A client certificate and key, as PEM text and as files. */
export interface ClientCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export interface ClientCa {
  readonly dir: string;
  readonly caFile: string;
  /** `usage`: clientAuth (Meta's shape) or serverAuth, for an upstream's own certificate. */
  issue(cn: string, opts?: { notBefore?: Date; notAfter?: Date; altNames?: readonly string[]; usage?: 'clientAuth' | 'serverAuth' }): ClientCert;
}

const CA_CNF = `[ca]
default_ca = test
[test]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
organizationName = optional
`;

function stamp(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/** A fresh CA (ECDSA P-256) in a temp folder removed at exit. */
export function makeClientCa(name: string): ClientCa {
  const dir = tempDir('crm-gw-client-ca-');
  writeFileSync(join(dir, 'ca.cnf'), CA_CNF);
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', `/O=${name}/CN=${name} Root`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  let n = 0;
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    issue(cn, opts = {}) {
      n += 1;
      const base = `c${n}`;
      const notBefore = opts.notBefore ?? new Date(Date.now() - 3_600_000);
      const notAfter = opts.notAfter ?? new Date(Date.now() + 7 * 86_400_000);
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${cn}`], dir);
      const san = opts.altNames?.length ? `subjectAltName=${opts.altNames.map((h) => (/^[\d.]+$/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',')}\n` : '';
      writeFileSync(join(dir, `${base}.ext`), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${opts.usage ?? 'clientAuth'}\n${san}`);
      openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.crt', '-keyfile', 'ca.key', '-startdate', stamp(notBefore), '-enddate', stamp(notAfter), '-extfile', `${base}.ext`, '-in', `${base}.csr`, '-out', `${base}.crt`, '-notext'], dir);
      const certFile = join(dir, `${base}.crt`);
      const keyFile = join(dir, `${base}.key`);
      return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
    },
  };
}

/**
 * What `openssl s_client -msg` says of a handshake with `servername` (none: `-noservername`).
 * A child of its own, never spawnSync: the gateway under test runs in this process.
 */
export function sClient(port: number, servername: string | undefined, extra: readonly string[] = []): Promise<string> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-msg', ...extra, ...(servername ? ['-servername', servername] : ['-noservername'])];
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    // s_client ends the connection when its input ends; it has read the server's flight by then.
    setTimeout(() => child.stdin.end(), 500);
  });
}
