import { existsSync } from 'node:fs';
import { loadConfigFile } from './config/load.js';
import { configPathFromEnv, type Env } from './config/env.js';
import type { GatewayConfig } from './config/schema.js';
import { insecureSettings, type PolicyFinding } from './config/policy.js';
import { devCaPaths, ensureDevCertificate, loadCertificatePair, type CertificateInfo } from './tls/certificates.js';
import { readClientCa } from './tls/client-certs.js';
import { routeHosts } from './routing/route-hosts.js';
import type { Logger } from './log/logger.js';
import { judgePersistence, probeRedisPersistence, supportsWaitAof } from './stores/persistence.js';
import { sentinelOptions } from './stores/sentinel.js';

export interface Prepared {
  config: GatewayConfig;
  findings: PolicyFinding[];
  certificate: CertificateInfo | undefined;
}

/** Thrown when production settings are unsafe: every reason is listed. */
export class RefusedToStart extends Error {
  constructor(
    readonly findings: readonly PolicyFinding[],
    heading = 'refusing to start in production',
  ) {
    super(`${heading}:\n${findings.map((f) => `  - [${f.id}] ${f.message}`).join('\n')}`);
    this.name = 'RefusedToStart';
  }
}

async function describeCertificate(cfg: GatewayConfig, log: Logger): Promise<CertificateInfo | undefined> {
  if (cfg.tls.acme) {
    // With ACME the gateway replaces an expired, self-signed or wrong-host certificate itself
    // (src/tls/acme/): it starts on the placeholder and orders at once, so a gateway that was off
    // longer than its certificate's life renews with no hand work. Only a certificate it serves is judged.
    // Loaded only with ACME (startup-footprint test: nothing under tls/acme/ otherwise).
    const onDisk = (await import('./tls/acme/on-disk.js')).readAcmeOnDisk(cfg);
    if (!onDisk.unservable) return onDisk.pair?.info;
    if (onDisk.pair || existsSync(cfg.tls.certFile)) {
      process.stderr.write(`WARNING: ${onDisk.unservable}: not served; ACME orders a new certificate at start (a placeholder serves meanwhile)\n`);
      log.app('warn', 'ACME: the certificate on disk is not served; a new one is ordered at start', { reason: onDisk.unservable, certFile: cfg.tls.certFile });
    }
    return undefined;
  }
  if (!existsSync(cfg.tls.certFile) || !existsSync(cfg.tls.keyFile)) return undefined;
  return loadCertificatePair(cfg.tls.certFile, cfg.tls.keyFile).info;
}

/**
 * Config → validated → certificate ready → policy verdict. Production refuses unsafe settings;
 * development logs each as a loud WARNING and, with no certificate, generates one issued by a
 * development CA (src/tls/certificates.ts).
 */
export async function prepare(
  env: Env,
  log: Logger,
  opts: { file?: string | undefined; generateCertificate?: boolean } = {},
): Promise<Prepared> {
  const config = loadConfigFile(opts.file ?? configPathFromEnv(env), env);
  // Every route's host too, so the development certificate covers routes beyond the default three.
  if (config.env === 'development' && opts.generateCertificate !== false && (await ensureDevCertificate(config.tls.certFile, config.tls.keyFile, config.domain, { extraHosts: [...routeHosts(config.routes)] }))) {
    log.app('warn', 'generated a development certificate; import its development CA into your browser to trust it', { certFile: config.tls.certFile, keyFile: config.tls.keyFile, caFile: devCaPaths(config.tls.certFile).cert });
    log.security('tls.certificate_generated', { certFile: config.tls.certFile });
  }
  // Before any port: the listener needs the CA file, and `config check` (which calls prepare) reports it the same way.
  const clientCa = config.whatsapp.mtls ? readClientCa(config).problem : undefined;
  if (clientCa) throw new RefusedToStart([{ id: 'whatsapp-mtls-ca', message: clientCa }], config.env === 'production' ? undefined : 'refusing to start');
  const certificate = await describeCertificate(config, log);
  const findings = insecureSettings(config, certificate);
  if (config.env === 'production' && findings.length > 0) throw new RefusedToStart(findings);
  for (const f of findings) {
    process.stderr.write(`WARNING: ${f.message} (${f.id}; production refuses to start with this)\n`);
    log.app('warn', f.message, { finding: f.id });
  }
  if (!config.stores.redisUrl) log.app('info', 'REDIS_URL not set: limits and shared state use the embedded in-memory store (one instance only)');
  if (!config.stores.databaseUrl) log.app('info', 'DATABASE_URL not set: embedded local stores are used (one instance only)');
  return { config, findings, certificate };
}

/** How long startup waits for Redis to say how it persists. */
const PERSISTENCE_PROBE_MS = 3_000;

/**
 * A WhatsApp webhook answers Meta 200 once a payload is in Redis, so with a webhook route the
 * Redis must keep what it acknowledged (issue 18, item 7): production refuses to start on a
 * Redis without an append-only file, and `whatsapp.waitAof` refuses on a Redis without
 * WAITAOF (before 7.2) in any environment. A Redis that cannot be reached, or hides CONFIG,
 * cannot be judged: the gateway starts (it serves without Redis) and says so.
 */
export async function checkWebhookRedis(config: GatewayConfig, log: Logger): Promise<void> {
  const url = config.stores.redisUrl;
  if (!url || !config.routes.some((r) => r.auth === 'whatsapp')) return;
  if (config.env !== 'production' && !config.whatsapp.waitAof) return;
  const read = await probeRedisPersistence(url, config.stores.redisPassword, PERSISTENCE_PROBE_MS, sentinelOptions(config));
  if ('unreachable' in read) {
    log.app('warn', 'Redis not reachable at startup: whether it persists webhook payloads is unknown (npx crm-gateway doctor checks it)', { error: read.unreachable });
    return;
  }
  const findings: PolicyFinding[] = [];
  if (config.whatsapp.waitAof && !supportsWaitAof(read.version)) {
    findings.push({ id: 'redis-waitaof', message: `whatsapp.waitAof needs WAITAOF, which Redis ${read.version ?? '(version unknown)'} lacks (7.2 or later); upgrade Redis or set whatsapp.waitAof: false` });
  }
  const verdict = judgePersistence(read, 'FAIL');
  if (config.env === 'production' && verdict.status === 'FAIL') findings.push({ id: 'redis-persistence', message: `Redis ${verdict.message}; ${verdict.fix ?? ''}` });
  else if (verdict.status !== 'PASS') log.app('warn', `Redis persistence: ${verdict.message}`, { status: verdict.status, fix: verdict.fix });
  if (findings.length > 0) throw new RefusedToStart(findings, config.env === 'production' ? undefined : 'refusing to start');
}
