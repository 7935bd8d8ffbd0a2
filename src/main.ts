import { pathToFileURL } from 'node:url';
import { processEnv, type Env } from './config/env.js';
import { ConfigError } from './config/load.js';
import type { Logger } from './log/logger.js';
import { createBufferedLogger } from './log/buffered.js';
import { createAuditLogger } from './audit/writer/audit-logger.js';
import { auditOptions } from './audit/writer/options.js';
import { LogDirLocked } from './audit/writer/writer-lock.js';
import { checkWebhookRedis, prepare, RefusedToStart } from './bootstrap.js';
import { bindGateway, ListenFailed, probePorts, type BoundGateway, type RunningGateway } from './server/start.js';
import { createRedis } from './stores/redis.js';
import { createPostgres } from './stores/postgres.js';
import { sentinelOptions } from './stores/sentinel.js';
import { clusterLogger, isClusterPrimary, joinCluster, runPrimary } from './server/cluster.js';
import { createAuthService } from './auth/service.js';
import { createAdminAuth } from './auth/admin-auth.js';
import { OpenApiSpecError } from './openapi/errors.js';
import { createContainment } from './containment/service.js';
import { wantsAssertion } from './auth/assertion/routes.js';
import { createGatewayMetrics } from './metrics/gateway.js';

/**
 * Wires only: load config → validate → bind the ports → lock and open the audit log → build app
 * → serve → stop on SIGTERM/SIGINT. The ports come before the log: a second instance started by
 * mistake (or while the first still drains after SIGTERM) stops on EADDRINUSE, or on the log
 * folder's lock, before it writes a line; two writers would fork the hash chains.
 */
export async function main(env: Env = processEnv()): Promise<RunningGateway> {
  // Lines logged before LOG_DIR is known wait here, then go to the audit files.
  const early = createBufferedLogger();
  const { config } = await prepare(env, early);
  // Before any port or log is taken, and in a cluster's primary before it forks.
  await checkWebhookRedis(config, early);
  // Before any port or log is taken: a spec that does not load stops startup here. The early
  // logger forwards to the audit log once it is open, so reloads (SIGHUP) are recorded there.
  // ajv is loaded only when a route validates (as the backup code is).
  const openapi = config.routes.some((r) => r.openapi) ? await (await import('./openapi/registry.js')).OpenApiSpecs.load(config.routes, early) : undefined;
  const primary = isClusterPrimary(config);
  // A worker needs the shared ticket keys before its HTTPS listener exists.
  const member = primary ? undefined : await joinCluster();
  let bound: BoundGateway | undefined;
  if (primary) await probePorts(config);
  else bound = await bindGateway(config, { ticketKeys: member?.ticketKeys });
  // This process's one set of metrics, served on its admin listener (a cluster's primary serves
  // none: each worker answers /metrics with its own).
  const metrics = createGatewayMetrics();
  // A cluster's primary serves no overview: the workers' loggers keep it.
  const audit = await createAuditLogger({ ...auditOptions(config, { overview: !primary }), metrics: metrics.log }).catch(async (err: unknown) => {
    await bound?.close();
    throw err;
  });
  early.replayInto(audit);
  // AUDIT_FAIL_CLOSED is read through `accepting`, which the worker-id wrapper would hide.
  const log: Logger = { ...clusterLogger(audit), accepting: () => audit.accepting() };
  // BACKUP_ENABLED: backups run in the cluster primary only (the one process when GATEWAY_WORKERS=1).
  // The backup code, and pg through it, is loaded only when backups are on (issue 13, item 5).
  const backups = config.backup.enabled ? await (await import('./backup/scheduler.js')).startBackupScheduler(config, log, metrics.registry) : undefined;
  // GATEWAY_WORKERS > 1: this process only supervises; each worker comes back through here.
  if (primary || !bound) return runPrimary(config, log, { close: () => audit.close() });
  // Every process serving /metrics reports the backups on disk, whichever process made them.
  if (config.backup.enabled) (await import('./backup/metrics.js')).watchBackupDir(config.backup.dir, metrics.registry);
  const redis = await createRedis(config, log, sentinelOptions(config));
  const postgres = await createPostgres(config, log);
  if (postgres) await audit.attachPostgres(postgres);
  // Side by side: each waits (boundedly) for its Redis subscription to be live.
  const [auth, containment] = await Promise.all([createAuthService(config, { log, redis, postgres }), createContainment(config, { log, redis })]);
  if (!auth) log.app('warn', 'API_SECRET_KEY not set: routes that need authentication refuse every request');
  // The identity assertion's keys: read (or created once) from the shared key file. Loaded only
  // when something is authenticated and a route carries an assertion.
  const assertions = auth && config.routes.some(wantsAssertion) ? (await import('./auth/assertion/service.js')).IdentityAssertions.open(config, log) : undefined;
  // ACME (tls.acme), loaded only when configured: every process runs it; a Redis lock lets one order at a time.
  const acme = config.tls.acme ? await (await import('./tls/acme/service.js')).createAcme(config, { log, raise: audit.raise, redis, registry: metrics.registry }) : undefined;
  // Automatic containment reads the alerts as the audit logger writes them.
  if (containment.auto) audit.observe({ security: (r) => containment.auto?.security(r) });
  // The handlers go in before the listeners open: "gateway listening" tells a supervisor the
  // process is up, and a SIGTERM right after it must stop gracefully, not kill by default.
  let running: RunningGateway | undefined = undefined;
  let pending: string | undefined;
  const stop = (signal: string): void => {
    if (!running) {
      pending = signal;
      return;
    }
    log.app('info', 'shutting down', { signal });
    running
      .shutdown()
      .then(() => acme?.stop())
      .then(() => backups?.stop())
      .then(() => auth?.close())
      .then(() => assertions?.close())
      .then(() => containment.close())
      // Every buffered log line reaches the disk before the process exits.
      .then(() => audit.close())
      .then(() => Promise.allSettled([redis?.quit(), postgres?.end()]))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  running = bound.serve({ log, metrics, redis, postgres, auth, openapi, containment, assertions, adminAuth: auth ? createAdminAuth(auth) : undefined, securityOverview: audit.overview, acmeHttp01: acme?.http01 });
  acme?.start(running);
  member?.follow(running.httpsServer);
  if (pending) stop(pending);
  return running;
}

/** Prints a startup failure for a person and exits non-zero. */
export function exitOnStartupError(err: unknown): never {
  if (err instanceof ConfigError || err instanceof RefusedToStart || err instanceof LogDirLocked || err instanceof ListenFailed || err instanceof OpenApiSpecError) process.stderr.write(`crm-gateway: error: ${err.message}\n`);
  else process.stderr.write(`crm-gateway: error: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(exitOnStartupError);
}
