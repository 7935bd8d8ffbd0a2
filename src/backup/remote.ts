import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { BackupError } from './errors.js';
import type { BackupKey } from './key.js';
import { manifestBody, writeManifest, type Manifest } from './manifest.js';
import type { S3Config } from './settings.js';

/** Parts of a multipart upload: at most PART_BYTES × QUEUE_PARTS of the file is in memory. */
const PART_BYTES = 8 * 1024 * 1024;
const QUEUE_PARTS = 2;
const CONNECT_TIMEOUT_MS = 10_000;
/** A socket silent this long is given up (the SDK retries the request). */
const SOCKET_TIMEOUT_MS = 120_000;
const MAX_ATTEMPTS = 3;

export interface RemoteTarget {
  bucket: string;
  endpoint: string;
}

export function remoteTarget(s3: S3Config): RemoteTarget | undefined {
  return s3.bucket ? { bucket: s3.bucket, endpoint: s3.endpoint ?? 'AWS S3' } : undefined;
}

/**
 * Copies a verified backup and then its manifest (recording where the copy is) to the bucket.
 * The file is already encrypted; the storage never sees plaintext or the key. Afterwards the
 * object's size and recorded sha256 are read back. Old remote copies are left to the bucket's
 * lifecycle rules: these credentials need to put objects, never to delete them.
 */
export async function copyToRemote(s3: S3Config, dataPath: string, manifestPath: string, manifest: Manifest, key: BackupKey, now: Date): Promise<Manifest> {
  const target = remoteTarget(s3);
  if (!target) throw new BackupError('BACKUP_CONFIG', 'no BACKUP_S3_BUCKET set');
  // Loaded only when used: the SDK is large, and warns about its Node support on load.
  const { S3Client, HeadObjectCommand, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const { Upload } = await import('@aws-sdk/lib-storage');
  const dataKey = `${s3.prefix}${basename(dataPath)}`;
  const manifestKey = `${s3.prefix}${basename(manifestPath)}`;
  // S3-compatible services often reject (or store verbatim) the SDK's newer default checksum
  // encodings; for them checksums are sent only where the API requires them, and the size and
  // sha256 are checked after the upload instead. AWS itself keeps the SDK's defaults.
  const checksums = s3.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  const client = new S3Client({
    region: s3.region,
    ...(s3.endpoint ? { endpoint: s3.endpoint, forcePathStyle: true } : {}),
    ...(s3.accessKeyId && s3.secretAccessKey ? { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } } : {}),
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: SOCKET_TIMEOUT_MS },
  });
  const where = (k: string): string => `s3://${target.bucket}/${k} (${target.endpoint})`;
  try {
    try {
      await new Upload({
        client,
        params: { Bucket: target.bucket, Key: dataKey, Body: createReadStream(dataPath), ContentType: 'application/octet-stream', Metadata: { sha256: manifest.ciphertext.sha256, 'key-id': manifest.keyId } },
        partSize: PART_BYTES,
        queueSize: QUEUE_PARTS,
        leavePartsOnError: false,
      }).done();
      const head = await client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: dataKey }));
      if (head.ContentLength !== manifest.ciphertext.bytes || head.Metadata?.sha256 !== manifest.ciphertext.sha256) {
        throw new Error(`the stored object is ${head.ContentLength ?? '?'} bytes (expected ${manifest.ciphertext.bytes}) or lacks its sha256`);
      }
      const updated = writeManifest(manifestPath, { ...manifestBody(manifest), remote: { bucket: target.bucket, key: dataKey, uploadedAt: now.toISOString() } }, key);
      await client.send(new PutObjectCommand({ Bucket: target.bucket, Key: manifestKey, Body: await readFile(manifestPath), ContentType: 'application/json' }));
      return updated;
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : '';
      throw new BackupError('BACKUP_REMOTE_FAILED', `copy to ${where(dataKey)} failed: ${e.name}${status}: ${e.message}`, { cause: err });
    }
  } finally {
    client.destroy();
  }
}
