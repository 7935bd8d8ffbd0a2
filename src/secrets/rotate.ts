import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DotenvDocument } from './dotenv.js';
import { readDotenvFile, writeDotenvFile } from './files.js';
import { formatPreviousKeys, keyId, rotateRing } from './keyring.js';
import { generateSecret, secretSpec, SECRET_SPECS } from './specs.js';

/** Rotate every secret at least this often (the architecture's maintenance checklist). */
export const SECRET_MAX_AGE_DAYS = 90;
const DAY_MS = 86_400_000;

/** Meta app secrets are 32 hex characters; anything much shorter is a paste error. */
const APP_SECRET = /^[A-Za-z0-9]{32,128}$/;

export interface RotateOptions {
  cwd: string;
  envFile?: string;
  now?: Date;
  /** Longest token lifetime (config `auth.maxTokenTtl`): how long the old JWT key keeps verifying. */
  maxTokenTtlMs: number;
  /** false: retire every earlier JWT key now (a leaked key). */
  grace?: boolean;
  /** A new app secret issued by Meta: the current one moves to WHATSAPP_APP_SECRET_PREVIOUS. */
  whatsappAppSecret?: string | undefined;
  /** Forget WHATSAPP_APP_SECRET_PREVIOUS (Meta signs with the new secret only by now). */
  dropWhatsappPrevious?: boolean;
  /** Skip the JWT ring (only the webhook secret changes). */
  skipJwt?: boolean;
}

export interface RotateResult {
  envFile: string;
  backup: string | undefined;
  jwt?: { oldKid: string | undefined; newKid: string; retireAfter: Date | undefined; previousKids: string[]; dropped: number };
  whatsapp?: 'rotated' | 'previous-dropped';
}

function openEnv(cwd: string, envFile: string | undefined): { path: string; doc: DotenvDocument } {
  const path = resolve(cwd, envFile ?? '.env');
  if (!existsSync(path)) throw new Error(`${path} does not exist: run \`npx crm-gateway setup\` first`);
  return { path, doc: readDotenvFile(path) };
}

/**
 * Rotates what can change without downtime: the JWT key ring (the old key keeps verifying
 * until every token it signed has expired) and, given Meta's new app secret, the webhook
 * secret (the previous one stays accepted during the switch). One backup, one atomic write.
 */
export function rotateSecrets(opts: RotateOptions): RotateResult {
  const now = opts.now ?? new Date();
  const { path, doc } = openEnv(opts.cwd, opts.envFile);
  const result: RotateResult = { envFile: path, backup: undefined };

  if (!opts.skipJwt) {
    const spec = secretSpec('API_SECRET_KEY');
    if (!spec) throw new Error('no spec for API_SECRET_KEY');
    const current = doc.get('API_SECRET_KEY') || undefined;
    const next = generateSecret(spec);
    const ring = rotateRing(current, doc.get('API_SECRET_KEY_PREVIOUS'), next, { now, maxTokenTtlMs: opts.maxTokenTtlMs, grace: opts.grace ?? true });
    doc.set('API_SECRET_KEY', next);
    doc.setCreatedAt('API_SECRET_KEY', now);
    doc.set('API_SECRET_KEY_PREVIOUS', formatPreviousKeys(ring.previous), ['# Earlier JWT keys: <secret>@<retire-after>, written by `secrets rotate`']);
    const oldEntry = current ? ring.previous.find((k) => k.secret === current) : undefined;
    result.jwt = {
      oldKid: current ? keyId(current) : undefined,
      newKid: keyId(next),
      retireAfter: oldEntry?.retireAfter,
      previousKids: ring.previous.map((k) => keyId(k.secret)),
      dropped: ring.dropped,
    };
  }

  if (opts.whatsappAppSecret !== undefined) {
    const fresh = opts.whatsappAppSecret.trim();
    if (!APP_SECRET.test(fresh)) throw new Error('the new WhatsApp app secret must be 32 or more letters and digits (copy it from the Meta app dashboard)');
    const current = doc.get('WHATSAPP_APP_SECRET') ?? '';
    if (fresh === current) throw new Error('the new WhatsApp app secret is the one already in use');
    if (current !== '') {
      doc.set('WHATSAPP_APP_SECRET_PREVIOUS', current, ['# The app secret before the last rotation: still accepted until removed']);
      doc.setCreatedAt('WHATSAPP_APP_SECRET_PREVIOUS', now);
    }
    doc.set('WHATSAPP_APP_SECRET', fresh, ["# WhatsApp app secret from Meta's app dashboard"]);
    doc.setCreatedAt('WHATSAPP_APP_SECRET', now);
    result.whatsapp = 'rotated';
  } else if (opts.dropWhatsappPrevious && doc.get('WHATSAPP_APP_SECRET_PREVIOUS')) {
    doc.set('WHATSAPP_APP_SECRET_PREVIOUS', '');
    result.whatsapp = 'previous-dropped';
  }

  if (result.jwt || result.whatsapp) result.backup = writeDotenvFile(path, doc, now);
  return result;
}

/** Generated secrets older than SECRET_MAX_AGE_DAYS (or of unknown age), oldest first. */
export function secretsDue(doc: DotenvDocument, now = new Date()): { name: string; createdAt: Date | undefined }[] {
  return SECRET_SPECS.filter((s) => doc.get(s.name))
    .map((s) => ({ name: s.name, createdAt: doc.createdAt(s.name) }))
    .filter((s) => !s.createdAt || now.getTime() - s.createdAt.getTime() > SECRET_MAX_AGE_DAYS * DAY_MS)
    .sort((a, b) => (a.createdAt?.getTime() ?? 0) - (b.createdAt?.getTime() ?? 0));
}

/**
 * Exact steps for the secrets a running service holds in memory or on disk: each needs a new
 * value written (with backup) and the services that read it recreated. Values never appear in
 * the steps; the one that must reach a program goes through a pipe, not argv.
 */
export function manualRotationSteps(envFile = '.env'): string {
  // grep, not `. ./.env`: a shell would run lines like BACKUP_SCHEDULE=0 2 * * * as commands.
  const load = `CRM_DB_PASSWORD=$(grep '^CRM_DB_PASSWORD=' ${envFile} | cut -d= -f2-)`;
  return `Secrets that need a restart of the services using them (run from the deployment folder):

1. PostgreSQL password (CRM_DB_PASSWORD): services reconnect with the new one.
     npx crm-gateway secrets generate CRM_DB_PASSWORD
     ${load}
     printf "ALTER USER crm_user PASSWORD '%s';\\n" "$CRM_DB_PASSWORD" | docker compose exec -T postgres psql -v ON_ERROR_STOP=1 -U crm_user -d crm_autonomo
     docker compose up -d --force-recreate crm-api nocodb backup
   (POSTGRES_PASSWORD only matters when the data volume is first created; the ALTER USER is what changes it.)
   Metabase keeps its own copy for its data source: Admin > Databases > CRM > update the password.

2. Redis password (REDIS_PASSWORD): Redis restarts with the new --requirepass; the gateway's
   rate limits use their fail mode for the seconds Redis is away.
     npx crm-gateway secrets generate REDIS_PASSWORD
     docker compose up -d --force-recreate redis gateway crm-api

3. NocoDB JWT secret (NOCODB_JWT_SECRET): every NocoDB session ends; users sign in again.
     npx crm-gateway secrets generate NOCODB_JWT_SECRET
     docker compose up -d --force-recreate nocodb

4. CRM API secret (CRM_API_SECRET): the CRM API's own tokens signed with the old secret end.
     npx crm-gateway secrets generate CRM_API_SECRET
     docker compose up -d --force-recreate crm-api

5. WhatsApp verify token (WHATSAPP_VERIFY_TOKEN): only used when Meta (re)verifies the webhook.
     npx crm-gateway secrets generate WHATSAPP_VERIFY_TOKEN
     docker compose up -d --force-recreate gateway
     then paste the new token (grep WHATSAPP_VERIFY_TOKEN ${envFile}) in Meta's dashboard: WhatsApp > Configuration > Webhook > Verify and save.

6. Log hash key (LOG_HASH_KEY): hashed ids in logs before and after cannot be correlated; note the date.
     npx crm-gateway secrets generate LOG_HASH_KEY
     docker compose up -d --force-recreate gateway

7. Webhook queue key (WHATSAPP_QUEUE_KEY): copy the current value to WHATSAPP_QUEUE_KEY_PREVIOUS
   in ${envFile} first, so payloads queued under it are still delivered, then:
     npx crm-gateway secrets generate WHATSAPP_QUEUE_KEY
     docker compose up -d --force-recreate gateway
   Once crmgw_whatsapp_queue_depth is 0, remove WHATSAPP_QUEUE_KEY_PREVIOUS and recreate again.

8. WhatsApp app secret (WHATSAPP_APP_SECRET): Meta issues it. In the Meta app dashboard,
   Settings > Basic > App secret > Reset, then, without a restart of Meta's deliveries:
     printf '%s' '<new secret>' | npx crm-gateway secrets rotate --whatsapp-app-secret-from-stdin --skip-jwt
     docker compose up -d --force-recreate gateway
   Both secrets are accepted until you run, a day later:
     npx crm-gateway secrets rotate --drop-whatsapp-previous --skip-jwt && docker compose up -d --force-recreate gateway

The gateway's JWT key (API_SECRET_KEY) rotates without downtime: npx crm-gateway secrets rotate-jwt,
then docker compose up -d --force-recreate gateway (tokens signed with the old key stay valid).
The backup key (secrets/backup.key) is not rotated here: backups made with it need it.
`;
}
