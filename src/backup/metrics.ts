import { Counter, Gauge, type Registry } from 'prom-client';
import { readCatalog } from './catalog.js';

/**
 * Two kinds of backup metrics. Counters and "last run" gauges live in the process that ran the
 * backup. The "stored" gauges are read from the manifests in BACKUP_DIR at every scrape, so
 * every gateway process reports them, whichever process (or the compose backup job) made them.
 */
function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * The counters and "last run" gauges of the backups this process runs, on `registry`. Registered
 * at the first run (they appear on /metrics once a backup ran here); later calls return the
 * registry's own.
 */
export function createBackupMetrics(registry: Registry) {
  return {
    runs: getOrCreate(registry, 'crmgw_backup_runs_total', () => new Counter({ name: 'crmgw_backup_runs_total', help: 'Backup runs by result (success, failure)', labelNames: ['result'] as const, registers: [registry] })),
    verifications: getOrCreate(registry, 'crmgw_backup_verifications_total', () => new Counter({ name: 'crmgw_backup_verifications_total', help: 'Backup verifications by result (verified, failed)', labelNames: ['result'] as const, registers: [registry] })),
    lastSuccess: getOrCreate(registry, 'crmgw_backup_last_success_timestamp_seconds', () => new Gauge({ name: 'crmgw_backup_last_success_timestamp_seconds', help: 'When this process last made a verified backup', registers: [registry] })),
    lastBytes: getOrCreate(registry, 'crmgw_backup_last_size_bytes', () => new Gauge({ name: 'crmgw_backup_last_size_bytes', help: 'Size of the last backup file this process made', registers: [registry] })),
    lastDuration: getOrCreate(registry, 'crmgw_backup_last_duration_seconds', () => new Gauge({ name: 'crmgw_backup_last_duration_seconds', help: 'Duration of the last backup run (dump, verification, copy)', registers: [registry] })),
    remote: getOrCreate(registry, 'crmgw_backup_remote_copies_total', () => new Counter({ name: 'crmgw_backup_remote_copies_total', help: 'Copies to S3-compatible storage by result', labelNames: ['result'] as const, registers: [registry] })),
  };
}

/** One folder read serves every gauge of a scrape. */
const SCRAPE_CACHE_MS = 1_000;

/**
 * Registers the gauges read from `dir` (BACKUP_DIR) at scrape time, once per registry: a second
 * call on the same registry changes nothing (every caller watches the one BACKUP_DIR). Manifests
 * are read without the key: this is monitoring, not verification.
 */
export function watchBackupDir(dir: string, registry: Registry): void {
  if (registry.getSingleMetric('crmgw_backup_stored')) return;
  const readStored = () => {
    const entries = readCatalog(dir).entries;
    const verified = entries.filter((e) => e.verified);
    return { entries, verified, newest: verified[verified.length - 1], last: entries[entries.length - 1] };
  };
  let cached: { at: number; value: ReturnType<typeof readStored> } | undefined;
  const snapshot = (): ReturnType<typeof readStored> => {
    if (!cached || performance.now() - cached.at > SCRAPE_CACHE_MS) cached = { at: performance.now(), value: readStored() };
    return cached.value;
  };
  new Gauge({
    name: 'crmgw_backup_stored',
    help: 'Backups in BACKUP_DIR by state (verified, unverified)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const s = snapshot();
      this.set({ state: 'verified' }, s.verified.length);
      this.set({ state: 'unverified' }, s.entries.length - s.verified.length);
    },
  });
  new Gauge({
    name: 'crmgw_backup_newest_verified_timestamp_seconds',
    help: 'When the newest verified backup in BACKUP_DIR was taken (0: none)',
    registers: [registry],
    collect() {
      this.set((snapshot().newest?.time.getTime() ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'crmgw_backup_newest_verified_size_bytes',
    help: 'Size of the newest verified backup file in BACKUP_DIR',
    registers: [registry],
    collect() {
      this.set(snapshot().newest?.bytes ?? 0);
    },
  });
  new Gauge({
    name: 'crmgw_backup_last_verified',
    help: '1 when the most recent backup in BACKUP_DIR is verified, 0 when it is not (or there is none)',
    registers: [registry],
    collect() {
      this.set(snapshot().last?.verified ? 1 : 0);
    },
  });
}
