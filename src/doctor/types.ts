import type { GatewayConfig } from '../config/schema.js';
import type { Env } from '../config/env.js';
import type { DotenvDocument } from '../secrets/dotenv.js';
import type { CertificatePair } from '../tls/certificates.js';

/** UNKNOWN: the check could not tell (a server that hides what was asked); it says why, and does not fail the run. */
export type Status = 'PASS' | 'WARN' | 'FAIL' | 'UNKNOWN';

/** One line of the report: a checklist item's verdict, and how to fix it when not PASS. */
export interface CheckResult {
  /** Stable id of the checklist item, e.g. `env-file-mode`. */
  id: string;
  status: Status;
  message: string;
  fix?: string | undefined;
}

/** What the checks look at, gathered once. Paths are absolute. */
export interface DoctorContext {
  readonly cwd: string;
  /** Judge as production: `--production`, or GATEWAY_ENV=production. */
  readonly production: boolean;
  readonly now: Date;
  /** The `.env` values, overlaid by the process environment, and in production by the compose gateway service's environment. */
  readonly env: Env;
  /** Where `env` came from, for the report. */
  readonly envSources: readonly string[];
  readonly envFile: { readonly path: string; readonly doc?: DotenvDocument | undefined; readonly error?: string | undefined };
  readonly config?: GatewayConfig | undefined;
  readonly configError?: string | undefined;
  readonly certificate?: { readonly pair?: CertificatePair | undefined; readonly error?: string | undefined } | undefined;
  readonly composeFiles: readonly string[];
  /** Bound on any network probe the static checks make (Redis). */
  readonly probeTimeoutMs: number;
  /** Resolves a configured path against the deployment folder. */
  at(path: string): string;
}

export type Check = (ctx: DoctorContext) => CheckResult[] | Promise<CheckResult[]>;

/** Unsafe-in-production severity: a FAIL in production, a WARN in development. */
export function prodFail(ctx: DoctorContext): Status {
  return ctx.production ? 'FAIL' : 'WARN';
}

export function pass(id: string, message: string): CheckResult {
  return { id, status: 'PASS', message };
}
