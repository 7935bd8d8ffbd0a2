import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type https from 'node:https';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

/**
 * `GATEWAY_WORKERS=N`: one primary that serves nothing itself and N workers that each run the
 * whole gateway on the same ports (node:cluster shares the listening sockets). Limits and other
 * shared state live in Redis (config validation requires REDIS_URL for N > 1). So that TLS
 * session resumption works whichever worker a reconnecting client lands on, the primary holds
 * the one session-ticket key set and hands it to every worker over IPC (never the environment,
 * which child processes and /proc would see).
 */

/** Size of a Node session-ticket key set: name, HMAC secret and AES key. */
export const TICKET_KEYS_BYTES = 48;
/** New ticket keys this often, so a leaked key set decrypts only a bounded span of sessions. */
export const TICKET_KEY_ROTATION_MS = 12 * 60 * 60_000;
/** A worker that crashes sooner than this after starting is restarted after a growing delay. */
export const HEALTHY_UPTIME_MS = 30_000;
const RESTART_DELAY_FIRST_MS = 500;
const RESTART_DELAY_MAX_MS = 30_000;
/** Time a worker has, after its own shutdownTimeout, to exit after SIGTERM before it is killed. */
const STOP_GRACE_MS = 5_000;
/** How long a starting worker waits for the primary's ticket keys. */
const TICKET_KEYS_WAIT_MS = 10_000;

const ASK = 'crmgw:ticket-keys?';
const KEYS = 'crmgw:ticket-keys';
interface KeysMessage {
  type: typeof KEYS;
  keys: string;
}

function isKeysMessage(m: unknown): m is KeysMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === KEYS && typeof (m as { keys?: unknown }).keys === 'string';
}

/** True in the primary of a multi-worker gateway: it runs `runPrimary` instead of serving. */
export function isClusterPrimary(cfg: GatewayConfig): boolean {
  return cfg.server.workers > 1 && cluster.isPrimary;
}

/**
 * Forks the workers, restarts any that die (with a growing delay while they keep crashing),
 * rotates the shared ticket keys, and on SIGTERM/SIGINT stops every worker gracefully (each
 * drains within its shutdownTimeout) before exiting. Never settles: the primary ends the process.
 * The primary holds the log folder's lock for the whole family (workers write chains of their
 * own, `*.w<id>`, under it): `close` writes out its own lines and releases the lock, and runs
 * only once every worker has exited, so no later gateway can start while one still writes.
 */
export function runPrimary(cfg: GatewayConfig, log: Logger, opts: { close?: () => Promise<void> } = {}): Promise<never> {
  let keys = randomBytes(TICKET_KEYS_BYTES);
  const started = new Map<Worker, number>();
  let quickDeaths = 0;
  let stopping = false;
  let failedExits = 0;

  const exit = (code: number): void => {
    const close = opts.close ?? (() => Promise.resolve());
    close().then(
      () => process.exit(code),
      () => process.exit(1),
    );
  };

  const fork = (): void => {
    if (stopping) return;
    const worker = cluster.fork();
    started.set(worker, Date.now());
    worker.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === ASK) worker.send({ type: KEYS, keys: keys.toString('base64') } satisfies KeysMessage);
    });
    worker.once('online', () => log.app('info', 'worker started', { worker: worker.id, pid: worker.process.pid }));
  };

  cluster.on('exit', (worker, code, signal) => {
    const since = started.get(worker) ?? Date.now();
    started.delete(worker);
    if (stopping) {
      if (code !== 0) failedExits++;
      if (started.size === 0) {
        log.app('info', 'all workers stopped', { failed: failedExits });
        exit(failedExits === 0 ? 0 : 1);
      }
      return;
    }
    quickDeaths = Date.now() - since < HEALTHY_UPTIME_MS ? quickDeaths + 1 : 0;
    const delay = quickDeaths === 0 ? 0 : Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_FIRST_MS * 2 ** (quickDeaths - 1));
    log.app('error', 'worker died; restarting it', { worker: worker.id, pid: worker.process.pid, code, signal, restartInMs: delay });
    setTimeout(fork, delay);
  });

  const rotation = setInterval(() => {
    keys = randomBytes(TICKET_KEYS_BYTES);
    for (const worker of started.keys()) if (worker.isConnected()) worker.send({ type: KEYS, keys: keys.toString('base64') } satisfies KeysMessage);
    log.security('tls.ticket_keys_rotated', { workers: started.size });
  }, TICKET_KEY_ROTATION_MS);
  rotation.unref();

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(rotation);
    log.app('info', 'stopping workers', { signal, workers: started.size });
    if (started.size === 0) exit(0);
    for (const worker of started.keys()) worker.process.kill('SIGTERM');
    setTimeout(() => {
      for (const worker of started.keys()) {
        log.app('warn', 'worker did not stop in time; killing it', { worker: worker.id, pid: worker.process.pid });
        worker.process.kill('SIGKILL');
      }
    }, cfg.server.shutdownTimeout + STOP_GRACE_MS).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));

  log.app('info', 'starting workers', { workers: cfg.server.workers });
  for (let i = 0; i < cfg.server.workers; i++) fork();
  return new Promise<never>(() => undefined);
}

/** In a worker: the process's logger with the worker id on every line (which worker served what). */
export function clusterLogger(log: Logger): Logger {
  const id = cluster.worker?.id;
  if (id === undefined) return log;
  return {
    access: (entry) => log.access({ ...entry, worker: id }),
    security: (event, fields = {}) => log.security(event, { ...fields, worker: id }),
    app: (level, message, fields = {}) => log.app(level, message, { ...fields, worker: id }),
  };
}

export interface ClusterMember {
  /** The shared session-ticket keys, for the HTTPS server's `ticketKeys`. */
  readonly ticketKeys: Buffer;
  /** Applies the primary's later key rotations to `server`. */
  follow(server: https.Server): void;
}

/** In a worker: asks the primary for the ticket keys. Undefined when not a cluster worker. */
export async function joinCluster(): Promise<ClusterMember | undefined> {
  if (!cluster.isWorker || !process.send) return undefined;
  const servers: https.Server[] = [];
  let resolveFirst: ((keys: Buffer) => void) | undefined;
  const first = new Promise<Buffer>((resolve, reject) => {
    resolveFirst = resolve;
    setTimeout(() => reject(new Error(`no TLS ticket keys from the cluster primary within ${TICKET_KEYS_WAIT_MS} ms`)), TICKET_KEYS_WAIT_MS).unref();
  });
  process.on('message', (m: unknown) => {
    if (!isKeysMessage(m)) return;
    const keys = Buffer.from(m.keys, 'base64');
    if (keys.length !== TICKET_KEYS_BYTES) return;
    resolveFirst?.(keys);
    resolveFirst = undefined;
    for (const server of servers) setTicketKeys(server, keys);
  });
  process.send({ type: ASK });
  const ticketKeys = await first;
  return { ticketKeys, follow: (server) => servers.push(server) };
}

/**
 * Also records the keys on the server object: a certificate reload (setSecureContext) rebuilds
 * the TLS context from `server.ticketKeys`, and must not bring back the previous keys.
 */
function setTicketKeys(server: https.Server, keys: Buffer): void {
  server.setTicketKeys(keys);
  (server as https.Server & { ticketKeys?: Buffer }).ticketKeys = keys;
}
