import { createHash, createSecretKey, type KeyObject } from 'node:crypto';

/** The one signing algorithm. It is pinned per key and never read from a token. */
export const JWT_ALGORITHM = 'HS256';
const KID = /^[0-9a-f]{16}$/;

export interface SigningKey {
  readonly kid: string;
  /** Prebuilt once: jsonwebtoken would otherwise re-parse a string secret on every verify. */
  readonly key: KeyObject;
  readonly algorithm: typeof JWT_ALGORITHM;
  /** Previous keys verify until then; the current key has none. */
  readonly retireAfter?: Date | undefined;
}

/** A key's id: the first 16 hex characters of sha256(secret). Never a path, only a map key. */
export function kidOf(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 16);
}

export class KeyRing {
  readonly current: SigningKey;
  private readonly byKid: ReadonlyMap<string, SigningKey>;

  constructor(current: string, previous: readonly { secret: string; retireAfter: Date }[] = []) {
    this.current = { kid: kidOf(current), key: createSecretKey(Buffer.from(current, 'utf8')), algorithm: JWT_ALGORITHM };
    const map = new Map<string, SigningKey>([[this.current.kid, this.current]]);
    for (const p of previous) {
      const kid = kidOf(p.secret);
      if (!map.has(kid)) map.set(kid, { kid, key: createSecretKey(Buffer.from(p.secret, 'utf8')), algorithm: JWT_ALGORITHM, retireAfter: p.retireAfter });
    }
    this.byKid = map;
  }

  /** The key for a token's `kid`, if it is a well-formed id of a key that is not retired. */
  lookup(kid: unknown, now: Date = new Date()): SigningKey | undefined {
    if (typeof kid !== 'string' || !KID.test(kid)) return undefined;
    const key = this.byKid.get(kid);
    if (!key || (key.retireAfter && key.retireAfter.getTime() <= now.getTime())) return undefined;
    return key;
  }

  get kids(): string[] {
    return [...this.byKid.keys()];
  }
}

/**
 * `API_SECRET_KEY_PREVIOUS`: comma-separated `<secret>@<retire-after ISO time>`. Entries whose
 * time has passed are dropped; a malformed entry is an error (a silently dropped key would
 * log everyone out; a silently kept one would never retire).
 */
export function parsePreviousKeys(text: string | undefined): { secret: string; retireAfter: Date }[] {
  if (!text) return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const at = entry.lastIndexOf('@');
      const retireAfter = new Date(entry.slice(at + 1));
      if (at <= 0 || Number.isNaN(retireAfter.getTime())) throw new Error('API_SECRET_KEY_PREVIOUS: each entry must be <secret>@<ISO time>');
      return { secret: entry.slice(0, at), retireAfter };
    });
}
