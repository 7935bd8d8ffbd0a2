/** The languages the gateway's own pages are written in. */
export const LANGUAGES = ['es', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

/**
 * The staff who use this stack speak Spanish (the architecture it implements is written in
 * Spanish), so a browser that states no usable preference gets Spanish.
 */
export const DEFAULT_LANGUAGE: Language = 'es';

/** Longest Accept-Language read: a real browser's is well under 200 bytes. */
const MAX_HEADER_CHARS = 1024;
/** Most language ranges weighed: a hostile header of thousands of entries costs no more. */
const MAX_RANGES = 32;
/** RFC 9110 §12.4.2: `0` to `1` with at most three decimals. */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;
/** RFC 4647 language-range: `*` or alphanumeric subtags of up to 8 characters. */
const RANGE = /^(?:\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*)$/;

/**
 * The page language for an `Accept-Language` header (RFC 9110 §12.5.4, RFC 4647 basic
 * filtering on the primary subtag): the supported language with the highest weight, the one
 * listed first on a tie; `*` stands for a supported language not named otherwise; `q=0`
 * refuses a language. Nothing usable: `fallback`, unless the client refused it and accepts
 * the other.
 */
export function negotiateLanguage(header: string | undefined, fallback: Language): Language {
  const weights = new Map<Language, number>();
  let wildcard: number | undefined;
  for (const entry of (header ?? '').slice(0, MAX_HEADER_CHARS).split(',').slice(0, MAX_RANGES)) {
    const [rawRange = '', ...params] = entry.split(';');
    const range = rawRange.trim().toLowerCase();
    if (!RANGE.test(range)) continue;
    const q = weightOf(params);
    if (q === undefined) continue;
    if (range === '*') {
      wildcard ??= q;
      continue;
    }
    const primary = range.split('-')[0] as string;
    const lang = LANGUAGES.find((l) => l === primary);
    // The first mention of a language is its weight (es-ES;q=1, es;q=0 still accepts Spanish).
    if (lang && !weights.has(lang)) weights.set(lang, q);
  }
  if (wildcard !== undefined) for (const l of [fallback, ...LANGUAGES]) if (!weights.has(l)) weights.set(l, wildcard);
  let best: Language | undefined;
  let bestQ = 0;
  for (const [lang, q] of weights) {
    if (q > bestQ) {
      best = lang;
      bestQ = q;
    }
  }
  if (best) return best;
  if (weights.get(fallback) === 0) return LANGUAGES.find((l) => l !== fallback && weights.get(l) !== 0) ?? fallback;
  return fallback;
}

/** The `q` parameter's value, 1 when absent, undefined when malformed (the range is then ignored). */
function weightOf(params: string[]): number | undefined {
  for (const p of params) {
    const [name = '', value = ''] = p.split('=');
    if (name.trim().toLowerCase() !== 'q') continue;
    const v = value.trim();
    return QVALUE.test(v) ? Number(v) : undefined;
  }
  return 1;
}
