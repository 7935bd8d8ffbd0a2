import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Server } from 'node:https';
import { loadCertificatePair, type CertificateInfo, type CertificatePair } from './certificates.js';
import { tlsPolicy } from './options.js';
import type { TlsMetrics } from './metrics.js';
import type { Logger } from '../log/logger.js';

const DEBOUNCE_MS = 250;

/** Why a loaded pair must not be served (production policy), or undefined to take it. */
export type CertificateVeto = (info: CertificateInfo) => string | undefined;

export interface CertificateReloader {
  /** Reloads now; resolves true when the new pair is in use. */
  reload(reason: string): boolean;
  readonly current: CertificateInfo;
  close(): void;
}

/**
 * Swaps the server's certificate without a restart: new handshakes get the new pair, open
 * connections keep theirs. Watches the files' folders (renewal tools replace files by
 * rename) and answers SIGHUP. A broken new pair, or one `veto` refuses, is refused and the old
 * one stays.
 */
export function createCertificateReloader(
  servers: readonly Server[],
  certFile: string,
  keyFile: string,
  initial: CertificateInfo,
  log: Logger,
  opts: {
    watch: boolean;
    veto?: CertificateVeto | undefined;
    /** Told of each pair taken (contexts built beside the servers'). */
    onReload?: ((pair: CertificatePair) => void) | undefined;
    /** The gateway's TLS metrics: the pair in use is reported in its expiry gauge. */
    metrics: TlsMetrics;
  },
): CertificateReloader {
  let current = initial;
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  const unreport = opts.metrics.reportCertificate(() => current);

  const reload = (reason: string): boolean => {
    try {
      const pair = loadCertificatePair(certFile, keyFile);
      const refused = opts.veto?.(pair.info);
      if (refused) throw new Error(refused);
      for (const s of servers) s.setSecureContext({ ...tlsPolicy(), cert: pair.cert, key: pair.key });
      opts.onReload?.(pair);
      current = pair.info;
      log.security('tls.certificate_reloaded', { reason, subject: pair.info.subject, validTo: pair.info.validTo.toISOString(), fingerprint256: pair.info.fingerprint256 });
      return true;
    } catch (err) {
      log.security('tls.certificate_reload_failed', { reason, error: (err as Error).message, keptFingerprint256: current.fingerprint256 });
      log.app('error', 'certificate reload failed; keeping the current certificate', { error: (err as Error).message });
      return false;
    }
  };

  const schedule = (reason: string): void => {
    clearTimeout(timer);
    timer = setTimeout(() => reload(reason), DEBOUNCE_MS);
    timer.unref();
  };

  const onHup = (): void => {
    reload('SIGHUP');
  };
  process.on('SIGHUP', onHup);

  if (opts.watch) {
    const names = new Set([basename(certFile), basename(keyFile)]);
    for (const dir of new Set([dirname(certFile), dirname(keyFile)])) {
      try {
        const w = watch(dir, { persistent: false }, (_event, file) => {
          if (file === null || names.has(String(file))) schedule(`file change: ${file ?? dir}`);
        });
        w.on('error', (err) => log.app('warn', 'certificate watcher failed', { dir, error: err.message }));
        watchers.push(w);
      } catch (err) {
        log.app('warn', 'cannot watch certificate folder; reload with SIGHUP', { dir, error: (err as Error).message });
      }
    }
  }

  return {
    reload,
    get current() {
      return current;
    },
    close() {
      clearTimeout(timer);
      unreport();
      process.off('SIGHUP', onHup);
      for (const w of watchers) w.close();
    },
  };
}
