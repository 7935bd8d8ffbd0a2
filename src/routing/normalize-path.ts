import { GatewayError } from '../errors.js';

export interface NormalizeOptions {
  /** Keep `%2F` (as `%2F`) instead of refusing it. Off by default: upstreams disagree on it. */
  allowEncodedSlashes?: boolean;
}

const HEX = /^[0-9A-Fa-f]{2}$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
/** Characters allowed raw in a path segment (RFC 3986 pchar without pct-encoded) plus '/'. */
const RAW_OK = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;
/** Characters browsers leave raw but that are not pchar: kept, in percent-encoded form. */
const RAW_ENCODE = /^["<>`{}|^[\]]$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function reject(detail: string): never {
  throw new GatewayError('PATH_REJECTED', detail);
}

/**
 * Brings a raw request path to the one form used for routing, policy, logging and forwarding,
 * or refuses it. Percent-encoded unreserved characters are decoded (so `/%61dmin` is `/admin`
 * everywhere), every other escape is kept with upper-case hex, and runs of slashes collapse.
 *
 * Refused, because upstreams and the gateway could read them differently: dot segments
 * (raw, encoded, or with `;` parameters), backslashes raw or encoded, encoded slashes (unless
 * allowed), NUL and other control characters, malformed or double escapes (`%252e`), invalid
 * or overlong UTF-8, and anything outside printable ASCII.
 */
export function normalizePath(raw: string, opts: NormalizeOptions = {}): string {
  if (!raw.startsWith('/')) reject('path does not start with /');
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const ch = raw[i] as string;
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!HEX.test(hex)) reject('malformed percent-encoding');
      const byte = parseInt(hex, 16);
      if (byte >= 0x80) {
        // Collect the whole run of escaped high bytes and require valid UTF-8 (no overlongs).
        const bytes: number[] = [];
        let j = i;
        while (raw[j] === '%' && HEX.test(raw.slice(j + 1, j + 3)) && parseInt(raw.slice(j + 1, j + 3), 16) >= 0x80) {
          bytes.push(parseInt(raw.slice(j + 1, j + 3), 16));
          j += 3;
        }
        try {
          utf8.decode(Uint8Array.from(bytes));
        } catch {
          reject('invalid UTF-8 in percent-encoding');
        }
        out += raw.slice(i, j).toUpperCase();
        i = j;
        continue;
      }
      const decoded = String.fromCharCode(byte);
      if (byte < 0x20 || byte === 0x7f) reject('encoded control character');
      if (decoded === '\\') reject('encoded backslash');
      if (decoded === '/') {
        if (!opts.allowEncodedSlashes) reject('encoded slash');
        out += '%2F';
      } else if (decoded === '%') {
        if (HEX.test(raw.slice(i + 3, i + 5))) reject('double percent-encoding');
        out += '%25';
      } else if (UNRESERVED.test(decoded)) {
        out += decoded;
      } else {
        out += `%${hex.toUpperCase()}`;
      }
      i += 3;
      continue;
    }
    const code = ch.charCodeAt(0);
    if (code < 0x21 || code > 0x7e) reject('control, space or non-ASCII character');
    if (ch === '\\') reject('backslash');
    if (ch === '?' || ch === '#') reject('query or fragment inside path');
    if (RAW_OK.test(ch)) out += ch;
    else if (RAW_ENCODE.test(ch)) out += `%${code.toString(16).toUpperCase()}`;
    else reject(`character ${JSON.stringify(ch)} not allowed`);
    i++;
  }
  out = out.replace(/\/{2,}/g, '/');
  // `%25%32%65` passes the check above but decodes to `%252e`: still a double escape.
  if (/%25[0-9A-Fa-f]{2}/.test(out)) reject('double percent-encoding');
  // An upstream that decodes a kept `%2F` would read `..%2F` as a dot segment.
  for (const segment of out.split(/\/|%2F/)) {
    const bare = segment.split(';')[0];
    if (bare === '.' || bare === '..') reject('dot segment');
  }
  return out;
}
