import { existsSync, readFileSync } from 'node:fs';
import { basename, relative, resolve } from 'node:path';
import { parseCompose, roleOf } from './compose.js';
import { configPathFromEnv, type Env } from '../config/env.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { DotenvError, type DotenvDocument } from '../secrets/dotenv.js';
import { readDotenvFile } from '../secrets/files.js';
import { loadCertificatePair, type CertificatePair } from '../tls/certificates.js';
import type { DoctorContext } from './types.js';

/** Longest wait of a network probe in the static checks. */
export const DEFAULT_PROBE_TIMEOUT_MS = 3_000;

/** Compose reads the first of these it finds, then the matching override file on top. */
const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

export interface DoctorOptions {
  /** The deployment folder: `.env`, config, compose file and relative paths live here. */
  cwd: string;
  /** The process environment; it overrides `.env` values as it does for compose. */
  env: Env;
  envFile?: string | undefined;
  configFile?: string | undefined;
  composeFiles?: readonly string[] | undefined;
  production?: boolean | undefined;
  now?: Date | undefined;
  probeTimeoutMs?: number | undefined;
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}${e.path ? ` (${e.path})` : ''}` : (e.message ?? String(err));
}

function readEnvFile(path: string): { path: string; doc?: DotenvDocument; error?: string } {
  if (!existsSync(path)) return { path, error: 'missing' };
  try {
    return { path, doc: readDotenvFile(path) };
  } catch (err) {
    return { path, error: err instanceof DotenvError ? err.message : `unreadable: ${errnoText(err)}` };
  }
}

function composeFiles(cwd: string, explicit: readonly string[] | undefined): string[] {
  if (explicit) return explicit.map((f) => resolve(cwd, f));
  const main = COMPOSE_FILES.map((f) => resolve(cwd, f)).find((f) => existsSync(f));
  if (!main) return [];
  const override = main.replace(/\.(ya?ml)$/, '.override.$1');
  return existsSync(override) ? [main, override] : [main];
}

/** The gateway service's environment in the compose file(s), interpolated; empty when there is none. */
function composeGatewayEnvironment(files: readonly string[], env: Env): { values: Record<string, string>; source?: string } {
  const values: Record<string, string> = {};
  let source: string | undefined;
  for (const file of files) {
    let services;
    try {
      services = parseCompose(readFileSync(file, 'utf8'), env, file);
    } catch {
      continue; // the compose check reports it
    }
    for (const s of services.filter((x) => roleOf(x) === 'gateway')) {
      for (const e of s.environment) if (e.value !== '') values[e.key] = e.value;
      source = `${basename(file)} services.${s.name}.environment`;
    }
  }
  return source ? { values, source } : { values };
}

/** Gathers what the checks need once: `.env`, merged environment, config, certificate, compose files. */
export function buildContext(opts: DoctorOptions): DoctorContext {
  const cwd = resolve(opts.cwd);
  const at = (p: string): string => resolve(cwd, p);
  const envFile = readEnvFile(at(opts.envFile ?? '.env'));
  const processValues = Object.fromEntries(Object.entries(opts.env).filter(([, v]) => v !== undefined && v !== ''));
  const base: Env = { ...(envFile.doc?.toRecord() ?? {}), ...processValues };
  const production = opts.production === true || base.GATEWAY_ENV === 'production';
  const files = composeFiles(cwd, opts.composeFiles);
  // A production gateway under compose runs with its service's environment: judge that, not
  // .env alone. In development the gateway runs here, with .env and the process environment.
  const gatewayEnv = production ? composeGatewayEnvironment(files, base) : { values: {} };
  const env: Env = { ...base, ...gatewayEnv.values };

  let config: GatewayConfig | undefined;
  let configError: string | undefined;
  try {
    config = loadConfigFile(at(opts.configFile ?? configPathFromEnv(env)), env);
  } catch (err) {
    configError = err instanceof ConfigError ? err.message : `config: ${errnoText(err)}`;
  }

  let certificate: { pair?: CertificatePair; error?: string } | undefined;
  if (config) {
    const certFile = at(config.tls.certFile);
    const keyFile = at(config.tls.keyFile);
    if (existsSync(certFile) !== existsSync(keyFile)) {
      const missing = existsSync(certFile) ? `the key ${config.tls.keyFile} (TLS_KEY_FILE)` : `the certificate ${config.tls.certFile} (TLS_CERT_FILE)`;
      certificate = { error: `${missing} does not exist, though the other half of the pair does` };
    } else if (existsSync(certFile)) {
      try {
        certificate = { pair: loadCertificatePair(certFile, keyFile) };
      } catch (err) {
        certificate = { error: err instanceof Error && !(err as NodeJS.ErrnoException).code ? err.message : `cannot read: ${errnoText(err)}` };
      }
    }
  }

  return {
    cwd,
    production,
    now: opts.now ?? new Date(),
    env,
    envFile,
    config,
    configError,
    certificate,
    composeFiles: files,
    envSources: [envFile.doc ? relative(cwd, envFile.path) : undefined, 'the process environment', 'source' in gatewayEnv ? gatewayEnv.source : undefined].filter((x): x is string => x !== undefined),
    probeTimeoutMs: opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
    at,
  };
}
