import { relative } from 'node:path';
import { processEnv } from '../../config/env.js';
import { runSetup, type SetupMode } from '../../secrets/setup.js';
import { maxTokenTtl } from '../../secrets/token-ttl.js';
import { flag, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError } from '../errors.js';

const USAGE = 'setup [development|production] [--rotate] [--env-file .env] [--template .env.example]';

/** `npx crm-gateway setup production`: `.env` with fresh secrets, the backup key, PostgreSQL's internal certificate. */
export const setupCommand: Command = {
  name: 'setup',
  usage: `${USAGE}\n                         write .env with generated secrets (mode 600, backup before any change)`,
  help: {
    synopsis: USAGE,
    description: 'write .env with generated secrets (mode 600, a backup before any change), the backup key and PostgreSQL\'s internal certificate',
    options: { rotate: { type: 'boolean' }, 'env-file': { type: 'string' }, template: { type: 'string' } },
  },
  async run(inv) {
    const [mode, extra] = inv.positionals;
    if (extra !== undefined || (mode !== undefined && mode !== 'development' && mode !== 'production')) {
      throw new CliError(`the mode is development or production, not ${extra ?? mode}`, 2, 'setup');
    }
    const rotate = flag(inv, 'rotate');
    const cwd = process.cwd();
    const envFile = stringOption(inv, 'env-file');
    const ttl = maxTokenTtl(cwd, envFile, processEnv());
    try {
      const r = await runSetup({ cwd, mode: mode as SetupMode | undefined, rotate, envFile, template: stringOption(inv, 'template'), maxTokenTtlMs: ttl.ms });
      const rel = (p: string): string => relative(cwd, p) || p;
      const out: string[] = [];
      if (r.changed) out.push(`${r.created ? 'created' : 'updated'} ${rel(r.envFile)} (mode 600)${r.backup ? `; the previous file is in ${rel(r.backup)} (mode 600)` : ''}`);
      else out.push(`${rel(r.envFile)} already up to date: not rewritten${r.modeTightened ? ' (mode set to 600)' : ''}`);
      if (r.generated.length > 0) out.push(`generated: ${r.generated.join(', ')}`);
      if (r.kept.length > 0) out.push(`kept: ${r.kept.join(', ')}${rotate ? '' : ' (--rotate replaces them)'}`);
      out.push(`backup key: ${rel(r.backupKey.path)} (${r.backupKey.created ? 'created' : 'exists, kept'}, mode 600; keep an offline copy: backups cannot be read without it)`);
      if (r.createdDirs.length > 0) out.push(`folders made: ${r.createdDirs.map(rel).join(', ')}`);
      out.push(`identity assertion key: ${rel(r.assertionKey.path)} (${r.assertionKey.created ? 'created' : 'exists, kept'}, mode 600, kid ${r.assertionKey.kid}; every gateway instance reads this file)`);
      out.push(`PostgreSQL certificate: ${rel(r.postgresCertificate.certFile)} (${r.postgresCertificate.created ? 'created' : 'exists'}, valid until ${r.postgresCertificate.validTo.toISOString().slice(0, 10)})`);
      if (ttl.warning && rotate) out.push(`note: ${ttl.warning}`);
      process.stdout.write(`${out.join('\n')}\n`);
      for (const w of r.warnings) process.stderr.write(`WARNING: ${w}\n`);
      process.stdout.write(`next: set GATEWAY_DOMAIN and CORS_ORIGINS in ${rel(r.envFile)}, install the TLS certificate (TLS_CERT_FILE / TLS_KEY_FILE), then: npx crm-gateway doctor${mode === 'production' ? ' --production' : ''}\n`);
      // In production a weak secret that was kept is a refusal, not a footnote.
      const weakKept = r.warnings.some((w) => w.startsWith('kept '));
      return mode === 'production' && weakKept ? 1 : 0;
    } catch (err) {
      throw new CliError(`setup: ${(err as Error).message} (no file was replaced without a backup)`);
    }
  },
};
