/**
 * Why a backup, verification or restore stopped. Codes are stable (scripts and the security log
 * key on them); the message names the file, database or setting at fault, never a secret.
 */
export const BACKUP_ERROR_CODES = {
  BACKUP_CONFIG: 'a backup setting is missing or invalid',
  BACKUP_KEY_INVALID: 'the key file is missing, unreadable, not 32 bytes hex, or inside the backup folder',
  BACKUP_KEY_MISMATCH: 'the backup was encrypted with another key',
  BACKUP_NOT_FOUND: 'no such backup file',
  BACKUP_FORMAT: 'not a crm-gateway backup, or a format version this build cannot read',
  BACKUP_TRUNCATED: 'the file is shorter than it must be',
  BACKUP_TAMPERED: 'authentication failed: the file was changed or damaged after it was written',
  BACKUP_CHECKSUM_MISMATCH: 'the file does not match its manifest',
  BACKUP_MANIFEST_MISSING: 'the manifest beside the backup is missing',
  BACKUP_MANIFEST_INVALID: 'the manifest is malformed, or its authentication code does not match',
  BACKUP_ARCHIVE_INVALID: 'the decrypted archive is not one pg_restore can read, or lacks a table of the manifest',
  BACKUP_DB_UNREACHABLE: 'the database cannot be reached or refused the login',
  BACKUP_TOOL_MISSING: 'pg_dump or pg_restore is not installed',
  BACKUP_DUMP_FAILED: 'pg_dump failed',
  BACKUP_TOO_LARGE: 'the dump is larger than one AES-GCM message may be',
  BACKUP_TARGET_NOT_EMPTY: 'the restore target already holds tables (use --force to restore over them)',
  BACKUP_RESTORE_FAILED: 'pg_restore failed; its single transaction was rolled back',
  BACKUP_INCONSISTENT: 'after the restore, tables or row counts differ from the manifest',
  BACKUP_REMOTE_FAILED: 'the copy to S3-compatible storage failed',
  BACKUP_RETENTION_FAILED: 'old backups could not be deleted',
  BACKUP_ABORTED: 'stopped before it finished (shutdown)',
} as const;

export type BackupErrorCode = keyof typeof BACKUP_ERROR_CODES;

export class BackupError extends Error {
  constructor(
    readonly code: BackupErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackupError';
  }
}

export function isBackupError(err: unknown): err is BackupError {
  return err instanceof BackupError;
}

/** The code for the security log and metrics: a BackupError's own, else a generic one. */
export function errorCode(err: unknown): string {
  return isBackupError(err) ? err.code : 'BACKUP_INTERNAL';
}
