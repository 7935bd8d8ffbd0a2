import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, open, rename, stat, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { LOG_FILE_MODE } from './fs-tap.js';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Gzips a closed log file to `<file>.gz` (mode 0640) and removes the original. The archive is
 * written under a temporary name, synced, then renamed, so a crash never leaves a half archive
 * under the real name; readers prefer the `.gz` when both exist.
 */
export async function gzipClosedFile(path: string): Promise<string> {
  const target = `${path}.gz`;
  if (await exists(target)) {
    // A previous run renamed the archive but stopped before removing the original.
    await unlink(path).catch(() => undefined);
    return target;
  }
  const tmp = `${target}.tmp`;
  try {
    await pipeline(createReadStream(path), createGzip(), createWriteStream(tmp, { mode: LOG_FILE_MODE }));
    await chmod(tmp, LOG_FILE_MODE);
    const fh = await open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await unlink(path);
  return target;
}
