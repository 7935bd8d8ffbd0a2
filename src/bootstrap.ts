import { existsSync } from 'node:fs';
import { loadConfigFile } from './config/load.js';
import { configPathFromEnv, type Env } from './config/env.js';
import type { GatewayConfig } from './config/schema.js';
import { insecureSettings, type PolicyFinding } from './config/policy.js';
import { devCaPaths, ensureDevCertificate, loadCertificatePair, type CertificateInfo } from './tls/certificates.js';
import type { Logger } from './log/logger.js';

export interface Prepared {
  config: GatewayConfig;
  findings: PolicyFinding[];
  certificate: CertificateInfo | undefined;
}

/** Thrown when production settings are unsafe: every reason is listed. */
export class RefusedToStart extends Error {
  constructor(readonly findings: readonly PolicyFinding[]) {
    super(`refusing to start in production:\n${findings.map((f) => `  - [${f.id}] ${f.message}`).join('\n')}`);
    this.name = 'RefusedToStart';
  }
}

function describeCertificate(cfg: GatewayConfig): CertificateInfo | undefined {
  if (!existsSync(cfg.tls.certFile) || !existsSync(cfg.tls.keyFile)) return undefined;
  return loadCertificatePair(cfg.tls.certFile, cfg.tls.keyFile).info;
}

/** Every route's host, so the development certificate covers routes beyond the default three. */
function routeHosts(cfg: GatewayConfig): string[] {
  return cfg.routes.flatMap((r) => (r.host ? [r.host] : []));
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
  if (config.env === 'development' && opts.generateCertificate !== false && (await ensureDevCertificate(config.tls.certFile, config.tls.keyFile, config.domain, { extraHosts: routeHosts(config) }))) {
    log.app('warn', 'generated a development certificate; import its development CA into your browser to trust it', { certFile: config.tls.certFile, keyFile: config.tls.keyFile, caFile: devCaPaths(config.tls.certFile).cert });
    log.security('tls.certificate_generated', { certFile: config.tls.certFile });
  }
  const certificate = describeCertificate(config);
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
