/** `backup`: encrypted database backups (the `backup` commands); doctor checks these against the checklist. */
import { z } from 'zod';
import { Cron } from 'croner';
import { DEFAULTS } from '../defaults.js';
import { bool, days, httpUrl, postgresUrl } from './fields.js';

/** Five cron fields, as the backup job's scheduler (croner) reads them. */
const cronSchedule = z.string().default(DEFAULTS.backupSchedule).refine((s) => {
  try {
    new Cron(s, { paused: true });
    return true;
  } catch {
    return false;
  }
}, 'not a cron schedule (five fields, e.g. 0 2 * * *)');

/** Remote copy of every verified backup (S3 or S3-compatible); off without a bucket. */
const s3Schema = z
  .strictObject({
    bucket: z.string().min(1).optional(),
    /** Unset: AWS S3. Set (e.g. https://minio.internal:9000): path-style requests to that service. */
    endpoint: httpUrl.optional(),
    region: z.string().min(1).default(DEFAULTS.backupS3Region),
    /** Key prefix inside the bucket, e.g. `crm/`. */
    prefix: z.string().regex(/^[A-Za-z0-9!_.*'()/-]*$/, 'letters, digits and !_.*\'()/- only').default(''),
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
  })
  // Each problem sits on the setting that was given, so it names the variable that set it.
  .superRefine((s, ctx) => {
    const both = 'set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (the SDK then looks for a role)';
    if (s.accessKeyId && !s.secretAccessKey) ctx.addIssue({ code: 'custom', path: ['accessKeyId'], message: both });
    if (s.secretAccessKey && !s.accessKeyId) ctx.addIssue({ code: 'custom', path: ['secretAccessKey'], message: both });
    if (!s.bucket && s.endpoint) ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'an S3 endpoint without a bucket: set BACKUP_S3_BUCKET (or unset BACKUP_S3_ENDPOINT)' });
  });

export const backupSchema = z
  .strictObject({
    enabled: bool.default(false),
    schedule: cronSchedule,
    retentionDays: days.default(DEFAULTS.backupRetentionDays),
    dir: z.string().default(DEFAULTS.backupDir),
    /** The encryption key's file (32 bytes hex, mode 0600): never in `.env`, never beside the backups. */
    keyFile: z.string().default(DEFAULTS.backupKeyFile),
    /** The CRM database to back up; unset: DATABASE_URL. */
    databaseUrl: postgresUrl.optional(),
    s3: s3Schema.prefault({}),
  })
  .prefault({});
