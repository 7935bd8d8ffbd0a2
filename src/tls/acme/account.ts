import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { Agent, get } from 'node:https';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import * as acme from 'acme-client';
import type { AcmeConfig } from '../../config/schema.js';
import { ConfigError } from '../../config/load.js';
import type { Logger } from '../../log/logger.js';
import { PRIVATE_DIR_MODE, writeNewPrivateFile } from '../../stores/private-file.js';
import { acmeDir } from './state.js';

/** Every request to the CA: a CA that hangs must not hold an order forever. */
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * acme-client retries 5xx, 429 and network errors itself, up to 5 times with 5 s, 10 s, …
 * between: 75 s per call while a directory is down. Two quick retries ride out a blip; the
 * manager's own backoff (minutes to hours) handles an outage.
 */
const CLIENT_RETRIES = 2;
const CLIENT_RETRY_DELAY_S = 1;

/**
 * acme-client talks through one axios instance of its own: its agent trusts the public roots
 * plus ACME_CA_FILE (a private CA's directory), nothing else, and only for the CA's requests.
 */
export function configureAcmeHttp(cfg: AcmeConfig): Agent {
  const extra = cfg.caFile ? readCaFile(cfg.caFile) : undefined;
  const defaults = acme.axios.defaults as typeof acme.axios.defaults & { acmeSettings: { retryMaxAttempts: number; retryDefaultDelay: number } };
  const agent = new Agent({ keepAlive: true, ca: extra ? [...rootCertificates, extra] : [...rootCertificates] });
  defaults.httpsAgent = agent;
  defaults.timeout = REQUEST_TIMEOUT_MS;
  defaults.acmeSettings.retryMaxAttempts = CLIENT_RETRIES;
  defaults.acmeSettings.retryDefaultDelay = CLIENT_RETRY_DELAY_S;
  return agent;
}

/**
 * Fetches the directory once, with the client's agent, before an order. acme-client 5.4.0 loses
 * the cause of a network error once its retries are spent (it reports "Cannot read properties
 * of undefined (reading 'config')"), so an unreachable CA is told here with its own error.
 */
export function probeDirectory(url: string, agent: Agent): Promise<{ renewalInfo?: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`ACME directory ${url} answered ${res.statusCode}`));
        try {
          const dir = JSON.parse(body) as { renewalInfo?: unknown };
          resolve({ renewalInfo: typeof dir.renewalInfo === 'string' ? dir.renewalInfo : undefined });
        } catch {
          reject(new Error(`ACME directory ${url} is not JSON`));
        }
      });
    });
    req.once('timeout', () => req.destroy(new Error(`ACME directory ${url}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`ACME directory ${url} unreachable: ${err.code ?? err.message}`)));
  });
}

/** ACME_CA_FILE, read and parsed once at startup: a missing or broken file stops startup with its reason. */
function readCaFile(file: string): string {
  try {
    const pem = readFileSync(file, 'utf8');
    new X509Certificate(pem);
    return pem;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.syscall ? (e.code ?? e.message) : `not a PEM certificate (${e.message})`;
    throw new ConfigError('ACME_CA_FILE', [{ path: 'tls.acme.caFile (from ACME_CA_FILE)', message: `${file}: ${why}` }]);
  }
}

/** One account key per directory, so switching CAs (staging → production) never reuses an account. */
export function accountKeyFile(dataDir: string, directoryUrl: string): string {
  return join(acmeDir(dataDir), `account-${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 16)}.key`);
}

/**
 * The account key (ECDSA P-256, PEM, mode 0600 from creation), made on first use. Two
 * processes making it at once: O_EXCL lets one write, and the other reads what it wrote.
 */
export function accountKey(dataDir: string, directoryUrl: string, log: Logger): string {
  const file = accountKeyFile(dataDir, directoryUrl);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(acmeDir(dataDir), { recursive: true, mode: PRIVATE_DIR_MODE });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  try {
    writeNewPrivateFile(file, pem);
    log.security('acme.account_key_created', { file });
    return pem;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8');
    throw err;
  }
}

/**
 * A client for the directory with its account registered (or found: a known key gets its
 * existing account back, RFC 8555 §7.3.1). Registering accepts the CA's terms of service, as
 * configuring ACME_DIRECTORY_URL does (docs/deployment.md, "Certificates from ACME").
 */
export async function accountClient(cfg: AcmeConfig, dataDir: string, log: Logger): Promise<acme.Client> {
  const client = new acme.Client({ directoryUrl: cfg.directoryUrl, accountKey: accountKey(dataDir, cfg.directoryUrl, log), backoffAttempts: 12, backoffMin: 500, backoffMax: 10_000 });
  await client.createAccount({ termsOfServiceAgreed: true, ...(cfg.email ? { contact: [`mailto:${cfg.email}`] } : {}) });
  return client;
}
