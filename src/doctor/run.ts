import { buildContext, type DoctorOptions } from './context.js';
import { MAPPED_FINDINGS, policyFindings } from './checks/policy.js';
import { configCheck, environmentCheck, envFileCheck } from './checks/env-file.js';
import { jwtKeyRingCheck, secretsAgeCheck, secretsSharedCheck, secretStrengthCheck } from './checks/secrets.js';
import { backupKeyCheck, gitignoreCheck, upstreamTlsKeyCheck } from './checks/files.js';
import { certificateCheck, certificateKeyModeCheck, hstsCheck, httpsRedirectCheck, tlsMinVersionCheck, whatsappMtlsCheck } from './checks/tls.js';
import { acmeCheck } from './checks/acme.js';
import { corsCheck, trustedProxiesCheck } from './checks/network.js';
import { postgresTlsCheck, redisPasswordCheck } from './checks/stores.js';
import { redisPersistenceCheck } from './checks/persistence.js';
import { backupsCheck } from './checks/backups.js';
import { logsCheck } from './checks/logs.js';
import { composeCheck } from './checks/compose.js';
import { prodFail, type Check, type CheckResult, type DoctorContext } from './types.js';

/** Whatever the startup policy reports that no checklist item above claims (added to policy.ts later). */
const otherPolicyFindings: Check = (ctx) =>
  policyFindings(ctx)
    .filter((f) => !MAPPED_FINDINGS.has(f.id))
    .map((f) => ({ id: `policy:${f.id}`, status: prodFail(ctx), message: f.message }));

/**
 * The pre-deployment and maintenance checklists, in the architecture's order: configuration
 * and secrets, HTTPS, network policy, stores, backups, logs, what the stack exposes.
 */
export const STATIC_CHECKS: readonly Check[] = [
  envFileCheck,
  environmentCheck,
  configCheck,
  secretStrengthCheck,
  secretsSharedCheck,
  jwtKeyRingCheck,
  secretsAgeCheck,
  gitignoreCheck,
  certificateCheck,
  certificateKeyModeCheck,
  acmeCheck,
  tlsMinVersionCheck,
  hstsCheck,
  httpsRedirectCheck,
  whatsappMtlsCheck,
  upstreamTlsKeyCheck,
  corsCheck,
  trustedProxiesCheck,
  redisPasswordCheck,
  redisPersistenceCheck,
  postgresTlsCheck,
  backupsCheck,
  backupKeyCheck,
  logsCheck,
  composeCheck,
  otherPolicyFindings,
];

/** Runs checks; one that throws is a FAIL (a check that cannot run has not passed). */
export async function runChecks(ctx: DoctorContext, checks: readonly Check[]): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const check of checks) {
    try {
      out.push(...(await check(ctx)));
    } catch (err) {
      out.push({ id: check.name || 'check', status: 'FAIL', message: `the check could not run: ${(err as Error).message}` });
    }
  }
  return out;
}

export async function runDoctor(opts: DoctorOptions): Promise<CheckResult[]> {
  return runChecks(buildContext(opts), STATIC_CHECKS);
}
