import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isBackupError } from './errors.js';
import type { BackupKey } from './key.js';
import { DATA_SUFFIX, MANIFEST_SUFFIX, PARTIAL_SUFFIX, readManifest, type Manifest } from './manifest.js';

/** One backup in the folder: its file, its manifest, or both. */
export interface CatalogEntry {
  /** `<name>` without suffixes. */
  name: string;
  dataPath: string | undefined;
  manifestPath: string | undefined;
  /** Present when the manifest parses (and, with a key, is authentic). */
  manifest: Manifest | undefined;
  /** Why the manifest could not be used, if it could not. */
  problem: string | undefined;
  /** When the backup was taken: the manifest's `createdAt`, else the file's modification time. */
  time: Date;
  /** Verified, by an authentic manifest, with its file present. */
  verified: boolean;
  bytes: number | undefined;
}

export interface Catalog {
  /** Oldest first. */
  entries: CatalogEntry[];
  /** `*.partial` files with their modification times. */
  partials: { path: string; mtime: Date }[];
}

/**
 * Reads the backup folder. With the key, a manifest counts only if its MAC checks out; without
 * (metrics), its shape is enough. Never throws for one bad file: that file is reported instead.
 */
export function readCatalog(dir: string, key?: BackupKey): Catalog {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], partials: [] };
    throw err;
  }
  const byName = new Map<string, { data?: string; manifest?: string }>();
  const partials: Catalog['partials'] = [];
  for (const file of names) {
    const path = join(dir, file);
    if (file.endsWith(PARTIAL_SUFFIX)) {
      try {
        partials.push({ path, mtime: statSync(path).mtime });
      } catch {
        // gone already: its writer finished or cleaned up
      }
      continue;
    }
    const suffix = file.endsWith(DATA_SUFFIX) ? DATA_SUFFIX : file.endsWith(MANIFEST_SUFFIX) ? MANIFEST_SUFFIX : undefined;
    if (!suffix) continue;
    const name = file.slice(0, -suffix.length);
    const slot = byName.get(name) ?? {};
    if (suffix === DATA_SUFFIX) slot.data = path;
    else slot.manifest = path;
    byName.set(name, slot);
  }
  const entries: CatalogEntry[] = [];
  for (const [name, slot] of byName) {
    let manifest: Manifest | undefined;
    let problem: string | undefined;
    if (slot.manifest) {
      try {
        manifest = readManifest(slot.manifest, key);
      } catch (err) {
        problem = isBackupError(err) ? `${err.code}: ${err.message}` : String(err);
      }
    } else problem = 'no manifest';
    let dataStat: { mtime: Date; size: number } | undefined;
    try {
      dataStat = slot.data ? statSync(slot.data) : undefined;
    } catch {
      dataStat = undefined;
    }
    const fallback = dataStat?.mtime ?? (slot.manifest ? statSync(slot.manifest).mtime : new Date(0));
    entries.push({
      name,
      dataPath: dataStat ? slot.data : undefined,
      manifestPath: slot.manifest,
      manifest,
      problem: problem ?? (dataStat ? undefined : 'backup file missing'),
      time: manifest ? new Date(manifest.createdAt) : fallback,
      verified: manifest?.verified === true && dataStat !== undefined,
      bytes: dataStat?.size,
    });
  }
  entries.sort((a, b) => a.time.getTime() - b.time.getTime() || (a.name < b.name ? -1 : 1));
  return { entries, partials };
}
