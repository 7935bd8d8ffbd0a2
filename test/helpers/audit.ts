import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createAuditLogger, type AuditLogger, type AuditLoggerOptions } from '../../src/audit/writer/audit-logger.js';
import type { Logger } from '../../src/log/logger.js';
import { parseConfig } from '../../src/config/load.js';
import type { AlertsConfig } from '../../src/config/schema.js';

/** The default alert settings, from the real schema, with YAML overrides (`alerts:` section). */
export function alertsConfig(yaml = ''): AlertsConfig {
  return parseConfig(`${yaml}\nroutes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: none }\n`, {}).alerts;
}

export interface TestAudit {
  readonly log: AuditLogger;
  readonly dir: string;
  /** Everything written to the console channel so far. */
  console(): string;
  close(): Promise<void>;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A real audit logger writing into a fresh temp folder (removed by `close` unless `keep`). */
export async function startTestAudit(overrides: Partial<AuditLoggerOptions> = {}, opts: { keep?: boolean } = {}): Promise<TestAudit> {
  const dir = overrides.dir ?? tempDir('crm-gw-audit-');
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString('utf8')));
  const log = await createAuditLogger({
    dir,
    retentionDays: 30,
    level: 'info',
    maxBacklogBytes: 16 * 1024 * 1024,
    failClosed: false,
    node: 'test-node',
    hashKey: 'test-log-hash-key-0123456789abcdef',
    alerts: alertsConfig(),
    console: out,
    resourceProbe: false,
    ...overrides,
  });
  let closed = false;
  return {
    log,
    dir,
    console: () => text,
    async close() {
      if (!closed) await log.close();
      closed = true;
      if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A logger's `security` without the registry's types: for tests that hand the writer what no
 * emitter may (an unregistered name, a password to redact, a field that forges `time`), to check
 * that the writer redacts and records it anyway.
 */
export function rawSecurity(log: Logger): (event: string, fields?: Record<string, unknown>) => void {
  const untyped = log as unknown as { security(event: string, fields?: Record<string, unknown>): void };
  return (event, fields) => untyped.security(event, fields);
}
