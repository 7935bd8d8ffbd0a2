import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, writeFileAtomic, writeNewPrivateFile } from '../../stores/private-file.js';

/*
 * The ES256 keys of the identity assertion (src/auth/assertion/signer.ts). One file holds them
 * all, so every instance that reads the same file (a shared DATA_DIR, or the same secret mounted
 * at GATEWAY_ASSERTION_KEY_FILE) signs with the same key and publishes the same JWKS:
 *
 *   { "version": 1, "keys": [ { "privateKey": "<PKCS#8 PEM>", "activeFrom": "<ISO>", "retireAfter": "<ISO>"? } ] }
 *
 * A rotation (`secrets rotate-assertion`) adds a key that becomes active only after a delay:
 * every instance re-reads the file well within it, so each publishes the new key before any
 * signs with it, and an upstream that meets the new `kid` finds it in the JWKS of whichever
 * instance it asks. The key it replaces stays published until every assertion it signed has
 * expired (`retireAfter`). A file holding one PEM private key is accepted too (an operator's
 * own secret store): it has no rotation schedule.
 */

/** Lifetime of one assertion (exp - iat). Short: an assertion copied off the wire is soon worthless. */
export const ASSERTION_TTL_MS = 60_000;
/** How often each instance re-reads the key file, besides watching it. */
export const KEY_RELOAD_MS = 30_000;
/** Clock skew between the gateway's hosts and the upstreams allowed for. */
export const KEY_CLOCK_SKEW_MS = 30_000;
/** Default delay before a rotated key signs: two reload periods, so every instance publishes it first. */
export const KEY_ACTIVATION_DELAY_MS = 2 * KEY_RELOAD_MS;
/** The file's name in DATA_DIR when GATEWAY_ASSERTION_KEY_FILE does not name one. */
export const ASSERTION_KEY_FILE_NAME = 'assertion-keys.json';

/** One key as kept in the file. */
interface StoredKey {
  privateKey: string;
  activeFrom: string;
  retireAfter?: string;
}

interface StoredKeys {
  version: 1;
  keys: StoredKey[];
}

/** A loaded key: its private half for signing, its public JWK for the JWKS. */
export interface AssertionKey {
  /** RFC 7638 JWK thumbprint of the public key (base64url SHA-256). */
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: Readonly<JsonWebKey>;
  /** When it starts signing (ms since epoch). */
  readonly activeFrom: number;
  /** When it leaves the JWKS (ms since epoch); undefined while it may still sign. */
  readonly retireAfter: number | undefined;
}

/**
 * RFC 7638 §3: SHA-256 over the JSON of the required members (`crv`, `kty`, `x`, `y` for EC)
 * in lexicographic order with no whitespace, base64url. Upstreams can compute it the same way.
 */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

function loadKey(pem: string, activeFrom: number, retireAfter: number | undefined, where: string): AssertionKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new Error(`${where}: not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`${where}: not an EC P-256 key (ES256 needs one: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)`);
  }
  // The public half is derived, never read: a file cannot publish a key it does not sign with.
  const full = createPublicKey(privateKey).export({ format: 'jwk' });
  const publicJwk: JsonWebKey = { kty: full.kty, crv: full.crv, x: full.x, y: full.y };
  return { kid: jwkThumbprint(publicJwk), privateKey, publicJwk, activeFrom, retireAfter };
}

function isoTime(value: unknown, where: string): number {
  const t = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(t)) throw new Error(`${where}: not an ISO-8601 time`);
  return t;
}

/** Parses the key file's text; throws naming the file and the entry (never a key's value). */
export function parseKeyFile(text: string, file: string): AssertionKey[] {
  if (text.trimStart().startsWith('-----BEGIN')) return [loadKey(text, 0, undefined, file)];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${file}: neither JSON nor a PEM private key`);
  }
  const keys = (doc as Partial<StoredKeys> | null)?.keys;
  if ((doc as Partial<StoredKeys> | null)?.version !== 1 || !Array.isArray(keys) || keys.length === 0) throw new Error(`${file}: expected {"version":1,"keys":[…]} with at least one key`);
  return keys.map((k: Partial<StoredKey>, i) => {
    const where = `${file} key ${i + 1}`;
    if (typeof k.privateKey !== 'string') throw new Error(`${where}: privateKey missing`);
    return loadKey(k.privateKey, isoTime(k.activeFrom, `${where} activeFrom`), k.retireAfter === undefined ? undefined : isoTime(k.retireAfter, `${where} retireAfter`), where);
  });
}

function newStoredKey(activeFrom: Date): StoredKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, activeFrom: activeFrom.toISOString() };
}

function serialize(doc: StoredKeys): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/**
 * Reads the key file, creating it first when missing (folder 0700, file 0600). Creation is
 * atomic and first-wins: the file is written whole beside its place and hard-linked there,
 * so instances starting together on a shared DATA_DIR all end up reading the one key that
 * won, never a half-written file or a key of their own. A file readable by others is
 * tightened to 0600 (`tightened` says so).
 */
export function ensureKeyFile(file: string): { keys: AssertionKey[]; created: boolean; tightened: boolean } {
  let created = false;
  let mode: number | undefined;
  try {
    mode = statSync(file).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (mode === undefined) {
    mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
    // Active since the epoch: hosts whose clocks disagree all sign with it at once.
    const staging = join(dirname(file), `.${basename(file)}.new-${randomBytes(6).toString('hex')}`);
    writeNewPrivateFile(staging, serialize({ version: 1, keys: [newStoredKey(new Date(0))] }));
    try {
      linkSync(staging, file);
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(staging, { force: true });
    }
  }
  const tightened = mode !== undefined && (mode & 0o077) !== 0;
  if (tightened) chmodSync(file, PRIVATE_FILE_MODE);
  return { keys: parseKeyFile(readFileSync(file, 'utf8'), file), created, tightened };
}

/** Reads the key file as it is now (reloads); throws when it is missing or malformed. */
export function readKeyFile(file: string): AssertionKey[] {
  return parseKeyFile(readFileSync(file, 'utf8'), file);
}

/** The key that signs at `now`: the newest already active, else (clocks far apart) the first to become so. */
export function signingKey(keys: readonly AssertionKey[], now: number): AssertionKey | undefined {
  const live = publishedKeys(keys, now);
  const active = live.filter((k) => k.activeFrom <= now);
  const pick = (from: AssertionKey[], better: (a: AssertionKey, b: AssertionKey) => boolean): AssertionKey | undefined => from.reduce<AssertionKey | undefined>((best, k) => (!best || better(k, best) ? k : best), undefined);
  return active.length > 0 ? pick(active, (a, b) => a.activeFrom > b.activeFrom) : pick(live, (a, b) => a.activeFrom < b.activeFrom);
}

/** The public keys an upstream must know at `now`: every key not yet retired, the next one included. */
export function publishedKeys(keys: readonly AssertionKey[], now: number): AssertionKey[] {
  return keys.filter((k) => k.retireAfter === undefined || k.retireAfter > now);
}

export interface RotateAssertionOptions {
  now?: Date;
  /** Until the new key signs (default KEY_ACTIVATION_DELAY_MS). */
  activationDelayMs?: number;
  /** false: drop every earlier key now and sign with the new one at once (a leaked key). */
  grace?: boolean;
}

export interface AssertionRotation {
  readonly file: string;
  readonly newKid: string;
  readonly activeFrom: Date;
  /** Earlier keys kept in the JWKS, with when each leaves it. */
  readonly retiring: { kid: string; retireAfter: Date }[];
  /** Keys removed (already retired, or all of them with grace: false). */
  readonly dropped: number;
}

/**
 * Adds a new key to the key file (creating the file when missing) and schedules the change:
 * the new key signs from now + activation delay; each earlier key that may still sign keeps
 * being published until that moment plus one reload period (an instance that has not re-read
 * the file yet), an assertion's lifetime and the clock skew. Retired keys are removed. One
 * atomic write (mode 0600); instances pick it up within KEY_RELOAD_MS, or at once when they
 * see the file change.
 */
export function rotateKeyFile(file: string, opts: RotateAssertionOptions = {}): AssertionRotation {
  const now = opts.now ?? new Date();
  const grace = opts.grace ?? true;
  const { keys: loaded } = ensureKeyFile(file);
  const text = readFileSync(file, 'utf8');
  const stored: StoredKey[] = text.trimStart().startsWith('-----BEGIN') ? [{ privateKey: text, activeFrom: new Date(0).toISOString() }] : (JSON.parse(text) as StoredKeys).keys;
  const activeFrom = new Date(now.getTime() + (grace ? (opts.activationDelayMs ?? KEY_ACTIVATION_DELAY_MS) : 0));
  const retireAt = new Date(activeFrom.getTime() + KEY_RELOAD_MS + ASSERTION_TTL_MS + KEY_CLOCK_SKEW_MS);
  const kept: StoredKey[] = [];
  const retiring: { kid: string; retireAfter: Date }[] = [];
  if (grace) {
    stored.forEach((s, i) => {
      const key = loaded[i] as AssertionKey;
      if (key.retireAfter !== undefined && key.retireAfter <= now.getTime()) return;
      const retireAfter = key.retireAfter !== undefined && key.retireAfter < retireAt.getTime() ? new Date(key.retireAfter) : retireAt;
      kept.push({ privateKey: s.privateKey, activeFrom: s.activeFrom, retireAfter: retireAfter.toISOString() });
      retiring.push({ kid: key.kid, retireAfter });
    });
  }
  const fresh = newStoredKey(activeFrom);
  writeFileAtomic(file, serialize({ version: 1, keys: [...kept, fresh] }), PRIVATE_FILE_MODE);
  const newKid = loadKey(fresh.privateKey, activeFrom.getTime(), undefined, file).kid;
  return { file, newKid, activeFrom, retiring, dropped: stored.length - kept.length };
}
