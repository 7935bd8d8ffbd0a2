import { IDENTIFIER_HASH, shortTokenHash, type IdentifierHasher } from './identifiers.js';
import { decodeQueryName } from '../../routing/query-name.js';

/**
 * Redaction by default: every field of every log line passes through here before it is
 * written anywhere (files, PostgreSQL, webhook, console).
 *
 * - credentials (`Authorization`, `Cookie`, `Set-Cookie`, `xc-auth`, `xc-token`,
 *   `X-Metabase-Session`, `X-Api-Key`, `hub.verify_token`, names with token/session/cookie…)
 *   appear only as a short hash;
 * - secrets (names with password/secret/key/credential…) never appear at all;
 * - personal identifiers (WhatsApp `from`, `wa_id`, `recipient_id`, phone) appear as a keyed hash
 *   (the caller's IdentifierHasher: the logger's; without one they do not appear at all);
 * - message content (`body`, `text`, `caption`) never appears.
 * The same rules apply to `name=value` pairs inside strings (query strings, cookie headers) and
 * bearer tokens or JWTs inside any string; there, OAuth's one-time parameters (`code`, `state`…,
 * URL_CREDENTIAL_NAMES) are credentials too, and a URL carried in a parameter (`rd`) is scrubbed
 * the same way.
 */
export type FieldClass = 'token' | 'secret' | 'identifier' | 'content';

export const REDACTED = '[redacted]';

const TOKEN_NAMES = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'xc-auth',
  'xc-token',
  'x-metabase-session',
  'x-api-key',
  'hub.verify_token',
  'x-hub-signature',
  'x-hub-signature-256',
]);
const IDENTIFIER_NAMES = new Set(['from', 'wa_id', 'waid', 'recipient_id', 'phone', 'phone_number', 'phonenumber']);
const CONTENT_NAMES = new Set(['body', 'text', 'caption', 'message_body']);
const PHONE_WORDS = new Set(['phone', 'msisdn', 'mobile']);
const SECRET_WORDS = new Set(['password', 'passwords', 'passwd', 'pwd', 'passphrase', 'secret', 'secrets', 'key', 'keys', 'credential', 'credentials', 'private', 'otp']);
const TOKEN_WORDS = new Set(['token', 'tokens', 'authorization', 'cookie', 'cookies', 'session', 'apikey', 'jwt', 'bearer', 'signature']);
/**
 * A last word that makes a name describe a credential rather than hold it (`keyFile`,
 * `tokenId`, `sessionTtl`): such fields are kept, or the log would lose what it is for.
 */
const DESCRIPTIVE_LAST_WORDS = new Set([
  'file', 'path', 'dir', 'mode', 'type', 'ttl', 'id', 'jti', 'count', 'length', 'name', 'method', 'kind', 'fingerprint',
  'fingerprint256', 'expires', 'expiry', 'exp', 'at', 'age', 'hash', 'source', 'version', 'policy', 'status', 'reason',
]);

const MAX_DEPTH = 8;
const CLASS_CACHE_LIMIT = 4096;
const classCache = new Map<string, FieldClass | null>();

function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
}

/** What a field of this name holds, for redaction; undefined when it is safe to write. */
export function classifyName(name: string): FieldClass | undefined {
  const cached = classCache.get(name);
  if (cached !== undefined) return cached ?? undefined;
  const result = classifyUncached(name);
  if (classCache.size >= CLASS_CACHE_LIMIT) classCache.clear();
  classCache.set(name, result ?? null);
  return result;
}

function classifyUncached(name: string): FieldClass | undefined {
  const lower = name.toLowerCase();
  const w = words(name);
  // The listed names in any spelling: `xc_auth`, `xcAuth`, `X_Metabase_Session`, `recipientId`, `waId`.
  if (TOKEN_NAMES.has(lower) || TOKEN_NAMES.has(w.join('-'))) return 'token';
  if (IDENTIFIER_NAMES.has(lower) || IDENTIFIER_NAMES.has(w.join('_'))) return 'identifier';
  if (CONTENT_NAMES.has(lower) || CONTENT_NAMES.has(w.join('_'))) return 'content';
  if (w.length > 1 && DESCRIPTIVE_LAST_WORDS.has(w[w.length - 1] as string)) return undefined;
  // A phone number under any other name (`customerPhone`, `msisdn`) is still a personal identifier.
  if (w.some((x) => PHONE_WORDS.has(x))) return 'identifier';
  if (w.some((x) => SECRET_WORDS.has(x))) return 'secret';
  if (w.some((x) => TOKEN_WORDS.has(x))) return 'token';
  return undefined;
}

const SCHEME_TOKEN = /^(Bearer|Basic|Token|Digest)\s+(.+)$/is;

function hashToken(value: string): string {
  const m = SCHEME_TOKEN.exec(value.trim());
  return m ? `${m[1]} ${shortTokenHash(m[2] as string)}` : shortTokenHash(value);
}

/**
 * An identifier's keyed hash; one that is a hash already (the webhook hashes phone numbers
 * before logging them) is kept as it is, so the same number reads the same in every line.
 * Without a hasher, nothing.
 */
function hashOnce(value: string, ids: IdentifierHasher | undefined): string {
  if (IDENTIFIER_HASH.test(value)) return value;
  return ids ? ids.hash(value) : REDACTED;
}

function redactClassified(cls: FieldClass, value: unknown, ids: IdentifierHasher | undefined): unknown {
  if (value === undefined || value === null) return value;
  switch (cls) {
    case 'secret':
    case 'content':
      return REDACTED;
    case 'token':
      if (typeof value === 'string') return hashToken(value);
      if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? hashToken(v) : REDACTED));
      return REDACTED;
    case 'identifier':
      if (typeof value === 'string' || typeof value === 'number') return hashOnce(String(value), ids);
      if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' || typeof v === 'number' ? hashOnce(String(v), ids) : REDACTED));
      return REDACTED;
  }
}

/**
 * OAuth / OpenID Connect parameters that carry a one-time credential in a URL (RFC 6749 4.1.2,
 * OIDC Core 3.1.2.5, RFC 7636): the SSO hand-off's `code` (src/auth/sso/handoff.ts), the OIDC
 * callback's `code` and `state`, an upstream application's own OAuth callback seen by
 * forward-auth. One rule, and only for `name=value` pairs inside a string (a query string, a URL
 * in a detail or a return URL), never for field names: `code` fields hold the gateway's own
 * error codes (`{ error: { code: 'AUTH_INVALID' } }`, `request.denied` events) and stay readable.
 * Chosen over "redact the query of /auth/* paths" because redaction sees fields, not which path a
 * query belongs to, and the same parameters reach the log under other paths too (a forward-auth
 * original URI, a login's `rd` that returns to `/auth/sso/start?…&state=…`). The price: a free
 * text `code=X` is hashed as well; no message of the gateway is written that way.
 */
const URL_CREDENTIAL_NAMES = new Set(['code', 'state', 'session_state', 'id_token', 'access_token', 'refresh_token', 'code_verifier']);
/** A return URL inside a return URL (`/auth/login?rd=/auth/sso/start?…&rd=…`) is two levels; a third for margin. */
const MAX_URL_NESTING = 3;
/** An escaped `=`: the value is (or holds) an escaped URL with a query of its own. */
const ESCAPED_PAIR = /%3D/i;

const PAIR = /(^|[?&;\s,])([^=&?;#\s,]+)=([^&;#\s]*)/g;
const BEARER_IN_TEXT = /\b(Bearer|Basic)\s+([A-Za-z0-9._~+/=-]{8,})/gi;
const JWT_IN_TEXT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** `scheme://user:password@` or `scheme://token@` in any string (a connection URL in an error message). */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@"'<>]+)@/gi;
/** `"name": "value"` or `"name": 123` inside a string: a JSON body quoted in an error or detail. */
const JSON_PAIR = /"((?:[^"\\]|\\.){1,128})"(\s*:\s*)("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*)/g;

function scrubUserinfo(text: string): string {
  return text.replace(URL_USERINFO, (_whole, scheme: string, info: string) => {
    const colon = info.indexOf(':');
    // Without a password part, the user part itself is often the token (`https://TOKEN@host`).
    return colon >= 0 ? `${scheme}${info.slice(0, colon)}:${REDACTED}@` : `${scheme}${shortTokenHash(info)}@`;
  });
}

function scrubJsonPairs(text: string, ids: IdentifierHasher | undefined): string {
  return text.replace(JSON_PAIR, (whole, name: string, sep: string, raw: string) => {
    const cls = classifyName(name);
    if (!cls) return whole;
    let value: unknown = raw;
    try {
      value = JSON.parse(raw) as unknown;
    } catch {
      // an escape JSON does not accept: the raw text is redacted all the same
    }
    return `"${name}"${sep}${JSON.stringify(String(redactClassified(cls, value, ids)))}`;
  });
}

/** `name=value` pairs of a query string or free text; `nesting`: how deep inside escaped URLs this text is. */
function scrubPairs(text: string, ids: IdentifierHasher | undefined, nesting: number): string {
  return text.replace(PAIR, (whole, lead: string, name: string, value: string) => {
    if (value === '') return whole;
    const decodedName = decodeQueryName(name);
    const cls = classifyName(decodedName) ?? (URL_CREDENTIAL_NAMES.has(decodedName.toLowerCase()) ? 'token' : undefined);
    if (cls) return `${lead}${name}=${String(redactClassified(cls, decodeQueryName(value), ids))}`;
    // A URL carried escaped (`rd=%2Fauth%2Fsso%2Fstart%3Fstate%3D…`): its own pairs, re-escaped only when one changed.
    if (nesting >= MAX_URL_NESTING || !ESCAPED_PAIR.test(value)) return whole;
    const inner = decodeQueryName(value);
    if (inner === value) return whole;
    const scrubbed = scrubPairs(inner, ids, nesting + 1);
    return scrubbed === inner ? whole : `${lead}${name}=${encodeURIComponent(scrubbed)}`;
  });
}

/** Redacts credentials inside free text: `name=value` and JSON pairs, URL userinfo, bearer tokens, JWTs. */
export function scrubText(text: string, ids?: IdentifierHasher): string {
  let out = text;
  if (out.includes('@') && out.includes('://')) out = scrubUserinfo(out);
  if (out.includes('":')) out = scrubJsonPairs(out, ids);
  if (out.includes('=')) out = scrubPairs(out, ids, 0);
  // Cheap pre-checks first: most strings hold none of these.
  if ((out.includes('earer') || out.includes('asic') || out.includes('EARER') || out.includes('ASIC')) && /bearer|basic/i.test(out)) out = out.replace(BEARER_IN_TEXT, (_w, scheme: string, token: string) => `${scheme} ${shortTokenHash(token)}`);
  if (out.includes('eyJ')) out = out.replace(JWT_IN_TEXT, (jwt) => shortTokenHash(jwt));
  return out;
}

function redactValue(value: unknown, depth: number, seen: WeakSet<object>, ids: IdentifierHasher | undefined): unknown {
  if (typeof value === 'string') return scrubText(value, ids);
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) return scrubText(value.message, ids);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[binary ${(value as ArrayBufferView).byteLength} bytes]`;
  if (depth >= MAX_DEPTH || seen.has(value)) return '[elided]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1, seen, ids));
  return redactObject(value as Record<string, unknown>, depth + 1, seen, ids);
}

function redactObject(obj: Record<string, unknown>, depth: number, seen: WeakSet<object>, ids: IdentifierHasher | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    const cls = classifyName(k);
    out[k] = cls ? redactClassified(cls, v, ids) : redactValue(v, depth, seen, ids);
  }
  return out;
}

/** A copy of `fields` that is safe to write to any log: see the module comment. */
export function redactFields(fields: Record<string, unknown>, ids?: IdentifierHasher): Record<string, unknown> {
  return redactObject(fields, 0, new WeakSet(), ids);
}
