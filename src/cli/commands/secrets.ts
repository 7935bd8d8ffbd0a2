import { relative, resolve } from 'node:path';
import { processEnv } from '../../config/env.js';
import { keyId } from '../../secrets/keyring.js';
import { manualRotationSteps, rotateSecrets, secretsDue } from '../../secrets/rotate.js';
import { runSetup } from '../../secrets/setup.js';
import { readDotenvFile } from '../../secrets/files.js';
import { maxTokenTtl } from '../../secrets/token-ttl.js';
import { flag, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError } from '../errors.js';

const ENV_FILE = { 'env-file': { type: 'string' } } as const;
const SUBCOMMANDS = {
  rotate: {
    synopsis: 'secrets rotate [--whatsapp-app-secret-from-stdin] [--drop-whatsapp-previous] [--skip-jwt] [--no-grace] [--env-file .env]',
    description: "rotate the JWT key ring (old tokens stay valid) and, from stdin, Meta's new app secret;\nprint the exact steps for the secrets that need a restart",
    options: { ...ENV_FILE, 'whatsapp-app-secret-from-stdin': { type: 'boolean' }, 'drop-whatsapp-previous': { type: 'boolean' }, 'skip-jwt': { type: 'boolean' }, 'no-grace': { type: 'boolean' } },
  },
  'rotate-assertion': {
    synopsis: 'secrets rotate-assertion [--no-grace] [--key-file F] [--env-file .env]',
    description: 'a new ES256 key for identity assertions: published at once, signing after 60 s;\nthe old key stays in the JWKS until its assertions expire (--no-grace: dropped now)',
    options: { ...ENV_FILE, 'no-grace': { type: 'boolean' }, 'key-file': { type: 'string' } },
  },
  'rotate-jwt': { synopsis: 'secrets rotate-jwt [--no-grace] [--env-file .env]', description: 'only the JWT key ring (--no-grace: every earlier key stops verifying now)', options: { ...ENV_FILE, 'no-grace': { type: 'boolean' } } },
  generate: { synopsis: 'secrets generate NAME... [--env-file .env]', description: 'a fresh value for each named secret (backup first); see the steps from secrets rotate', options: ENV_FILE },
  status: { synopsis: 'secrets status [--env-file .env]', description: 'key ids and ages of the secrets in .env (never their values)', options: ENV_FILE },
} as const;

/** Largest app secret accepted on stdin: refuses a file piped by mistake. */
const MAX_STDIN_BYTES = 4096;

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("paste Meta's new app secret, then press Enter and Ctrl-D:\n");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN_BYTES) throw new Error('more than 4 KB on stdin: that is not an app secret');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}

function printRotation(r: ReturnType<typeof rotateSecrets>, cwd: string): void {
  const rel = (p: string): string => relative(cwd, p) || p;
  const lines: string[] = [];
  if (r.jwt) {
    lines.push(`JWT key ring: new current key ${r.jwt.newKid}${r.jwt.oldKid ? `; ${r.jwt.oldKid} keeps verifying until ${r.jwt.retireAfter?.toISOString() ?? 'now (no grace)'}` : ''}`);
    if (r.jwt.dropped > 0) lines.push(`  dropped ${r.jwt.dropped} earlier key(s) past their retire-after time${r.jwt.retireAfter ? '' : ' (or retired now by --no-grace)'}`);
  }
  if (r.whatsapp === 'rotated') lines.push('WhatsApp app secret: new secret stored; the previous one stays accepted (WHATSAPP_APP_SECRET_PREVIOUS)');
  if (r.whatsapp === 'previous-dropped') lines.push('WhatsApp app secret: the previous secret is no longer accepted');
  if (r.backup) lines.push(`${rel(r.envFile)} updated (mode 600); previous copy ${rel(r.backup)}`);
  if (r.jwt || r.whatsapp) lines.push('apply: docker compose up -d --force-recreate gateway (or restart the gateway)');
  process.stdout.write(`${lines.join('\n')}\n`);
}

export const secretsCommand: Command = {
  name: 'secrets',
  usage: 'secrets rotate | secrets rotate-jwt | secrets rotate-assertion | secrets generate NAME... | secrets status\n                         rotate and inspect the secrets in .env (secrets --help)',
  subcommands: SUBCOMMANDS,
  async run(inv) {
    const { sub } = inv;
    const names = inv.positionals;
    // Not echoed: a stray word here may be the very secret meant for stdin.
    if (sub !== 'generate' && names.length > 0) throw new CliError(`secrets ${sub ?? ''} takes no argument; a new app secret comes from stdin, never the command line`, 2, `secrets ${sub ?? ''}`);
    const cwd = process.cwd();
    const envFile = stringOption(inv, 'env-file');
    const v = { 'whatsapp-app-secret-from-stdin': flag(inv, 'whatsapp-app-secret-from-stdin'), 'drop-whatsapp-previous': flag(inv, 'drop-whatsapp-previous'), 'skip-jwt': flag(inv, 'skip-jwt'), 'no-grace': flag(inv, 'no-grace') };
    try {
      switch (sub) {
        case 'rotate':
        case 'rotate-jwt': {
          const ttl = maxTokenTtl(cwd, envFile, processEnv());
          if (ttl.warning && !v['skip-jwt']) process.stderr.write(`WARNING: ${ttl.warning}\n`);
          const r = rotateSecrets({
            cwd,
            envFile,
            maxTokenTtlMs: ttl.ms,
            grace: !v['no-grace'],
            skipJwt: v['skip-jwt'] === true,
            whatsappAppSecret: v['whatsapp-app-secret-from-stdin'] ? await readStdin() : undefined,
            dropWhatsappPrevious: v['drop-whatsapp-previous'] === true,
          });
          printRotation(r, cwd);
          if (sub === 'rotate') process.stdout.write(`\n${manualRotationSteps(envFile ?? '.env')}`);
          return 0;
        }
        case 'rotate-assertion': {
          const { rotateAssertionKey } = await import('../../auth/assertion/rotate-command.js');
          const r = rotateAssertionKey({ cwd, envFile, env: processEnv(), keyFile: stringOption(inv, 'key-file'), grace: !v['no-grace'] });
          if (r.warning) process.stderr.write(`WARNING: ${r.warning}\n`);
          const lines = [`identity assertion key ${relative(cwd, r.file) || r.file}: new key ${r.newKid} signs from ${r.activeFrom.toISOString()}`];
          for (const k of r.retiring) lines.push(`  ${k.kid} stays in the JWKS until ${k.retireAfter.toISOString()}`);
          if (r.dropped > 0) lines.push(`  dropped ${r.dropped} key(s)${v['no-grace'] ? ' now (--no-grace): assertions they signed fail at once' : ' past their retire-after time'}`);
          lines.push('running gateways reading this file pick it up within 30 s; no restart');
          process.stdout.write(`${lines.join('\n')}\n`);
          return 0;
        }
        case 'generate': {
          if (names.length === 0) throw new Error('name the secrets to generate, e.g. secrets generate CRM_DB_PASSWORD');
          const ttl = maxTokenTtl(cwd, envFile, processEnv());
          const r = await runSetup({ cwd, envFile, only: names, maxTokenTtlMs: ttl.ms });
          process.stdout.write(`generated ${r.generated.join(', ')}${r.backup ? `; previous ${relative(cwd, r.envFile)} kept in ${relative(cwd, r.backup)}` : ''}\nrecreate the services that use them (npx crm-gateway secrets rotate prints which)\n`);
          return 0;
        }
        case 'status': {
          const doc = readDotenvFile(resolve(cwd, envFile ?? '.env'));
          const due = new Set(secretsDue(doc).map((d) => d.name));
          for (const name of doc.keys()) {
            if (!/(SECRET|PASSWORD|TOKEN|_KEY)$/.test(name) || !doc.get(name)) continue;
            const created = doc.createdAt(name);
            process.stdout.write(`${name.padEnd(26)} ${created ? `created ${created.toISOString()}` : 'age unknown'}${due.has(name) ? '  ROTATE' : ''}${name === 'API_SECRET_KEY' ? `  kid ${keyId(doc.get(name) ?? '')}` : ''}\n`);
          }
          return 0;
        }
        default:
          throw new CliError(`unknown secrets command ${sub ?? ''}`, 2, 'secrets');
      }
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`secrets: ${(err as Error).message}`);
    }
  },
};
