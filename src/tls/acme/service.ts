import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:https';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import * as acme from 'acme-client';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { AcmeConfig, GatewayConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { RaiseAlert } from '../../audit/alerts/rules.js';
import { writeFileAtomic } from '../../stores/private-file.js';
import { loadCertificatePair, type CertificatePair } from '../certificates.js';
import type { CertificateReloader } from '../reloader.js';
import { accountClient, configureAcmeHttp, probeDirectory } from './account.js';
import { memoryChallenges, redisChallenges, type ChallengeStore } from './challenges.js';
import { acmeHosts } from './hosts.js';
import { acmeUnusable } from './on-disk.js';
import { createHttp01Responder, type Http01Responder } from './http01.js';
import { localOrderLock, orderLockScope, redisOrderLock, ORDER_LOCK_TTL_MS, type OrderClaim, type OrderLock } from './lock.js';
import { createAcmeMetrics } from './metrics.js';
import { describeAcmeError, orderCertificate } from './order.js';
import { ariCertId, backoffDelay, BACKOFF_FIRST_MS, BACKOFF_MAX_MS, parseRenewalInfo, renewalTime, type SuggestedWindow } from './renewal.js';
import { writeAcmeState, type AcmeState } from './state.js';
import { serveTlsAlpnChallenges } from './tls-alpn.js';

/** Longest single wait: timers past 2^31 ms fire at once, and a recheck now and then picks up files another instance wrote. */
const MAX_WAIT_MS = 12 * 3_600_000;
/** With ARI, the renewal window is asked again this often (RFC 9773 §4.3 leaves it to Retry-After; 6 h is its example). */
const ARI_POLL_MS = 6 * 3_600_000;
/** How soon an instance that found the lock held looks again (for the files, or to order if the holder died). */
const LOCK_RECHECK_MS = 30_000;
/** How long the first check waits for Redis to connect at startup. */
const REDIS_READY_MS = 5_000;

export interface AcmeOptions {
  backoffFirstMs?: number;
  backoffMaxMs?: number;
  lockRecheckMs?: number;
  lockTtlMs?: number;
}

export interface AcmeDeps {
  readonly log: Logger;
  readonly raise?: RaiseAlert | undefined;
  readonly redis?: Redis | undefined;
  /** The gateway's metrics registry: the ACME gauges are registered there when ACME starts. */
  readonly registry: Registry;
}

export interface AcmeService {
  readonly challenges: ChallengeStore;
  /** The plain-HTTP listener's answer to `/.well-known/acme-challenge/<token>`; undefined with tls-alpn-01 (nothing exempt from the 308 then). */
  readonly http01: Http01Responder | undefined;
  /** Starts checking, ordering and renewing for the running gateway's listener and its certificate reloader. */
  start(target: { httpsServer: Server; certificates: CertificateReloader }): void;
  /** Checks now (startup, tests); resolves when the check, and any order it placed, is done. */
  checkNow(): Promise<void>;
  readonly state: AcmeState;
  /** Stops scheduling; waits (boundedly) for an order under way. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Whether `pair` is one ACME should keep: a CA's (not self-signed, not the development CA's), valid now, covering every name (on-disk.ts). */
function keepable(pair: CertificatePair | undefined, names: readonly string[]): pair is CertificatePair {
  return pair !== undefined && acmeUnusable(pair, names) === undefined;
}

function readPair(cfg: GatewayConfig): CertificatePair | undefined {
  if (!existsSync(cfg.tls.certFile) || !existsSync(cfg.tls.keyFile)) return undefined;
  try {
    return loadCertificatePair(cfg.tls.certFile, cfg.tls.keyFile);
  } catch {
    return undefined;
  }
}

/**
 * ACME for the whole gateway (docs/deployment.md, "Certificates from ACME"): one certificate for every
 * routed host, ordered when missing (or not covering the hosts, or not a CA's), renewed at two
 * thirds of its lifetime or when the CA's renewal window (ARI) opens earlier, written to
 * TLS_CERT_FILE / TLS_KEY_FILE for the reloader to serve. One instance orders at a time (a
 * Redis lock with fencing); the others pick the files up. Failures back off, exponentially and
 * capped, each raising an alert; the certificate being served stays.
 */
export async function createAcme(cfg: GatewayConfig, deps: AcmeDeps, opts: AcmeOptions = {}): Promise<AcmeService> {
  const settings = cfg.tls.acme as AcmeConfig;
  const { log, redis } = deps;
  const acmeMetrics = createAcmeMetrics(deps.registry);
  const agent = configureAcmeHttp(settings);
  acme.setLogger((message) => log.app('debug', 'acme-client', { message }));
  const challenges = redis ? redisChallenges(redis) : memoryChallenges();
  const hosts = acmeHosts(cfg);
  const lock: OrderLock = redis ? redisOrderLock(redis, orderLockScope(settings.directoryUrl, hosts.names), opts.lockTtlMs ?? ORDER_LOCK_TTL_MS) : localOrderLock();
  const dataDir = cfg.stores.dataDir;
  if (hosts.skipped.length > 0) log.app('warn', 'ACME: route hosts left out of the certificate (no CA validates them)', { skipped: hosts.skipped });
  let state: AcmeState = { directoryUrl: settings.directoryUrl, hosts: hosts.names, status: 'waiting', failures: 0 };
  let client: acme.Client | undefined;
  let target: { httpsServer: Server; certificates: CertificateReloader } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  let unhook: (() => void) | undefined;

  const save = (next: Partial<AcmeState>): void => {
    state = { ...state, ...next };
    acmeMetrics.failures.set(state.failures);
    if (state.nextAttempt) acmeMetrics.nextAttempt.set(Date.parse(state.nextAttempt) / 1000);
    if (state.lastSuccess) acmeMetrics.lastSuccess.set(Date.parse(state.lastSuccess) / 1000);
    try {
      writeAcmeState(dataDir, state);
    } catch (err) {
      log.app('warn', 'ACME: cannot write the state file', { error: (err as Error).message });
    }
  };

  const schedule = (at: Date): void => {
    if (stopped) return;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(at.getTime() - Date.now(), MAX_WAIT_MS));
    save({ nextAttempt: new Date(Date.now() + wait).toISOString() });
    timer = setTimeout(() => void checkNow(), wait);
    timer.unref();
  };

  /** The CA's renewal window for `pair`, when its directory offers ARI; undefined otherwise or on any failure. */
  const renewalWindow = async (pair: CertificatePair): Promise<SuggestedWindow | undefined> => {
    try {
      const dir = await probeDirectory(settings.directoryUrl, agent);
      if (!dir.renewalInfo) return undefined;
      const id = ariCertId(pair.cert.toString());
      if (!id) return undefined;
      return parseRenewalInfo((await acme.axios.get(`${dir.renewalInfo.replace(/\/$/, '')}/${id}`)).data);
    } catch (err) {
      log.app('debug', 'ACME: renewal information unavailable', { error: describeAcmeError(err) });
      return undefined;
    }
  };

  /** Serves what is in the files when it is not what the listener has (another instance wrote them). */
  const pickUp = (pair: CertificatePair, reason: string): void => {
    if (target && target.certificates.current.fingerprint256 !== pair.info.fingerprint256) target.certificates.reload(reason);
  };

  const waitForRedis = async (): Promise<void> => {
    if (!redis || redis.status === 'ready') return;
    await Promise.race([once(redis, 'ready'), new Promise((_r, reject) => setTimeout(() => reject(new Error(`Redis not ready within ${REDIS_READY_MS} ms`)), REDIS_READY_MS).unref())]);
  };

  const order = async (claim: OrderClaim): Promise<void> => {
    const started = Date.now();
    save({ status: 'ordering', lastAttempt: new Date().toISOString() });
    const keepAlive = setInterval(() => void claim.extend().catch(() => undefined), Math.max(1_000, (opts.lockTtlMs ?? ORDER_LOCK_TTL_MS) / 3));
    keepAlive.unref();
    try {
      await probeDirectory(settings.directoryUrl, agent);
      client ??= await accountClient(settings, dataDir, log);
      const issued = await orderCertificate(client, hosts.names, settings.challenge, challenges, log);
      // What the CA sent must load, match its key and cover every name before it replaces anything.
      createSecureContext({ cert: issued.cert, key: issued.key });
      const x509 = new X509Certificate(issued.cert);
      const uncovered = hosts.names.filter((n) => x509.checkHost(n) === undefined);
      if (uncovered.length > 0) throw new Error(`the CA's certificate does not cover ${uncovered.join(', ')}`);
      if (!(await claim.commit())) {
        log.security('acme.order_discarded', { reason: 'the order lock passed to another instance (fencing)', fence: claim.fence, order: issued.orderUrl });
        schedule(new Date(Date.now() + (opts.lockRecheckMs ?? LOCK_RECHECK_MS)));
        return;
      }
      for (const file of [cfg.tls.keyFile, cfg.tls.certFile]) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      // Key first: a reload between the two writes sees a mismatched pair, refuses it and keeps the old one.
      writeFileAtomic(cfg.tls.keyFile, issued.key, 0o600);
      writeFileAtomic(cfg.tls.certFile, issued.cert, 0o644);
      const validFrom = new Date(x509.validFrom);
      const validTo = new Date(x509.validTo);
      log.security('acme.certificate_issued', { hosts: hosts.names, order: issued.orderUrl, fence: claim.fence, validFrom: validFrom.toISOString(), validTo: validTo.toISOString(), fingerprint256: x509.fingerprint256, tookMs: Date.now() - started });
      if (target && !target.certificates.reload('acme: certificate issued')) throw new Error('the issued certificate was written but the listener refused it (see tls.certificate_reload_failed)');
      save({ status: 'waiting', failures: 0, lastError: undefined, lastSuccess: new Date().toISOString(), certificateValidTo: validTo.toISOString() });
      schedule(renewalTime(validFrom, validTo, undefined));
    } finally {
      clearInterval(keepAlive);
    }
  };

  const check = async (): Promise<void> => {
    if (hosts.names.length === 0) {
      throw new Error('no route host a CA can validate (IP addresses and loopback names are left out)');
    }
    const current = readPair(cfg);
    if (keepable(current, hosts.names)) {
      pickUp(current, 'acme: files changed');
      const due = renewalTime(current.info.validFrom, current.info.validTo, await renewalWindow(current));
      if (due.getTime() > Date.now()) {
        // A good certificate is in place (ours or another instance's): nothing is failing now.
        save({ status: 'waiting', failures: 0, certificateValidTo: current.info.validTo.toISOString() });
        schedule(due.getTime() - Date.now() > ARI_POLL_MS ? new Date(Date.now() + ARI_POLL_MS) : due);
        return;
      }
    }
    await waitForRedis();
    const claim = await lock.acquire();
    if (!claim) {
      save({ status: 'held-elsewhere' });
      schedule(new Date(Date.now() + (opts.lockRecheckMs ?? LOCK_RECHECK_MS)));
      return;
    }
    try {
      // Another instance may have renewed between our look and our claim.
      const again = readPair(cfg);
      if (keepable(again, hosts.names) && renewalTime(again.info.validFrom, again.info.validTo, undefined).getTime() > Date.now() && again.info.fingerprint256 !== current?.info.fingerprint256) {
        pickUp(again, 'acme: files changed');
        save({ status: 'waiting', certificateValidTo: again.info.validTo.toISOString() });
        schedule(renewalTime(again.info.validFrom, again.info.validTo, undefined));
        return;
      }
      await order(claim);
    } finally {
      await claim.release().catch(() => undefined);
    }
  };

  const checkNow = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    running ??= check()
      .catch((err: unknown) => {
        client = undefined;
        const error = describeAcmeError(err);
        const failures = state.failures + 1;
        const retryInMs = backoffDelay(failures, opts.backoffFirstMs ?? BACKOFF_FIRST_MS, opts.backoffMaxMs ?? BACKOFF_MAX_MS);
        save({ status: 'failing', failures, lastError: error, lastAttempt: new Date().toISOString() });
        const served = target?.certificates.current;
        log.security('acme.order_failed', { error, failures, retryInMs, hosts: hosts.names, servedFingerprint256: served?.fingerprint256, servedValidTo: served?.validTo.toISOString() });
        log.app('error', 'ACME: could not obtain a certificate; the current one keeps serving', { error, failures, retryInMs });
        deps.raise?.('acme_failed', settings.directoryUrl, `ACME order failed ${failures} time(s) in a row: ${error}; next attempt in ${Math.round(retryInMs / 1000)} s`, { error, failures, retryInMs, hosts: hosts.names });
        schedule(new Date(Date.now() + retryInMs));
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  return {
    challenges,
    http01: settings.challenge === 'http-01' ? createHttp01Responder(challenges, log, hosts.names) : undefined,
    get state() {
      return state;
    },
    start(t) {
      target = t;
      if (settings.challenge === 'tls-alpn-01') unhook = serveTlsAlpnChallenges(t.httpsServer, challenges, log, cfg.server.headersTimeout);
      log.app('info', 'ACME: certificates from the directory', { directoryUrl: settings.directoryUrl, hosts: hosts.names, challenge: settings.challenge });
      void checkNow();
    },
    checkNow,
    async stop(timeoutMs = 5_000) {
      stopped = true;
      clearTimeout(timer);
      unhook?.();
      if (!running) return;
      const done = await Promise.race([running.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
      if (!done) log.app('warn', 'ACME: stopped while an order is still under way; it ends on its own', { timeoutMs, status: state.status });
    },
  };
}
