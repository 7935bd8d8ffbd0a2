import { isIP } from 'node:net';

/**
 * Host header and SNI in one comparable form: lower case, no port, no trailing dot.
 * Returns undefined for anything that is not a plain host name or IP literal.
 */
export function normalizeHost(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  // Before lower-casing: U+212A (Kelvin sign) lower-cases to an ASCII 'k'.
  if (/[\u0080-\uffff]/.test(raw)) return undefined;
  let h = raw.trim().toLowerCase();
  if (h === '') return undefined;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    const inner = h.slice(1, end);
    return /^[0-9a-f:.]+$/.test(inner) && isIP(inner) === 6 ? `[${inner}]` : undefined;
  }
  const colon = h.lastIndexOf(':');
  if (colon >= 0) {
    if (!/^\d{1,5}$/.test(h.slice(colon + 1))) return undefined;
    h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(h) || h.length > 253) return undefined;
  return h;
}
