import { createHash } from 'node:crypto';
import { DEFAULTS } from '../config/defaults.js';
import { knownDuration } from '../config/units.js';

/**
 * The JWT key ring as it lives in `.env`: `API_SECRET_KEY` is the current key, and
 * `API_SECRET_KEY_PREVIOUS` holds earlier keys as `<secret>@<retire-after ISO-8601 UTC>`,
 * comma-separated. A previous key still verifies tokens until its retire-after time, so a
 * rotation never logs anyone out.
 */
export interface PreviousKey {
  secret: string;
  retireAfter: Date;
}

/** Clock skew allowed on top of the longest token lifetime before an old key retires. */
export const KEY_RETIRE_SKEW_MS = 30_000;
/** Longest token lifetime when the config cannot tell (the default of `auth.maxTokenTtl`). */
export const DEFAULT_MAX_TOKEN_TTL_MS = knownDuration(DEFAULTS.authMaxTokenTtl);

/** A key's id: the first 16 hex characters of sha256 over the secret's UTF-8 text. */
export function keyId(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 16);
}

/** Parses API_SECRET_KEY_PREVIOUS; throws naming the entry (by position, never by value) that is malformed. */
export function parsePreviousKeys(text: string | undefined): PreviousKey[] {
  if (!text || text.trim() === '') return [];
  return text.split(',').filter((e) => e.trim() !== '').map((entry, i) => {
    const at = entry.trim().lastIndexOf('@');
    const secret = at > 0 ? entry.trim().slice(0, at) : '';
    const when = at > 0 ? entry.trim().slice(at + 1) : '';
    const retireAfter = new Date(when);
    if (!secret || !/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(when) || Number.isNaN(retireAfter.getTime())) {
      throw new Error(`API_SECRET_KEY_PREVIOUS entry ${i + 1} is not <secret>@<retire-after ISO-8601 UTC time>`);
    }
    return { secret, retireAfter };
  });
}

export function formatPreviousKeys(keys: readonly PreviousKey[]): string {
  return keys.map((k) => `${k.secret}@${k.retireAfter.toISOString()}`).join(',');
}

export interface RotatedRing {
  current: string;
  previous: PreviousKey[];
  /** Entries dropped because their retire-after time had passed. */
  dropped: number;
}

/**
 * Moves `current` into the previous keys (retiring after the longest token lifetime plus skew,
 * so every token it signed expires first), installs `next`, and drops retired entries.
 * `grace: false` retires every earlier key at once (a leaked key: all its tokens die now).
 */
export function rotateRing(
  current: string | undefined,
  previousText: string | undefined,
  next: string,
  opts: { now: Date; maxTokenTtlMs: number; grace?: boolean },
): RotatedRing {
  if (current && /[,@]/.test(current)) throw new Error('API_SECRET_KEY contains "," or "@" and cannot be kept in the key ring; rotate with --no-grace');
  const previous = parsePreviousKeys(previousText);
  if (opts.grace === false) return { current: next, previous: [], dropped: previous.length };
  const kept = previous.filter((k) => k.retireAfter.getTime() > opts.now.getTime());
  if (current) kept.unshift({ secret: current, retireAfter: new Date(opts.now.getTime() + opts.maxTokenTtlMs + KEY_RETIRE_SKEW_MS) });
  return { current: next, previous: kept, dropped: previous.length - (kept.length - (current ? 1 : 0)) };
}
