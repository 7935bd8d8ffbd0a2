import { STATUS_CODES } from 'node:http';
import { ERRORS, type ErrorCode } from '../errors.js';
import { en, type Catalogue, type MessageKey } from './en.js';
import { es } from './es.js';
import type { Language } from './language.js';

export type { MessageKey } from './en.js';

/** Every catalogue, by language: the one place that lists them. */
export const CATALOGUES: Readonly<Record<Language, Catalogue>> = { en, es };

/** Delay-seconds only (RFC 9110 §10.2.3): the gateway never sends the HTTP-date form. */
const DELAY_SECONDS = /^\d{1,9}$/;
/** Up to this many seconds a wait reads in seconds, then minutes up to WAIT_MINUTES_MAX, then hours. */
const WAIT_SECONDS_MAX = 90;
const WAIT_MINUTES_MAX = 90;

function fill(text: string, vars: Readonly<Record<string, string | number>>): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

/** A page text in `lang`, with its `{name}` placeholders filled in. */
export function t(lang: Language, key: MessageKey, vars: Readonly<Record<string, string | number>> = {}): string {
  return fill(CATALOGUES[lang][key], vars);
}

/** A catalogue entry by a key built at run time (`error.<CODE>`); undefined when missing. */
function lookup(lang: Language, key: string): string | undefined {
  const catalogue: Readonly<Record<string, string>> = CATALOGUES[lang];
  return Object.hasOwn(catalogue, key) ? catalogue[key] : undefined;
}

/**
 * An error's message on a page. A code added to the registry before its translations shows the
 * registry's English message (test/unit/i18n/catalogues.test.ts names the missing key).
 */
export function errorMessage(lang: Language, code: ErrorCode): string {
  return lookup(lang, `error.${code}`) ?? ERRORS[code].message;
}

/** A page heading for an HTTP status, e.g. "404 · No encontrado". */
export function statusTitle(lang: Language, status: number): string {
  const name = lookup(lang, `status.${status}`) ?? STATUS_CODES[status] ?? '';
  return name ? `${status} · ${name}` : String(status);
}

/** A `Retry-After` header's seconds; undefined when absent or not delay-seconds. */
export function retryAfterSeconds(value: string | undefined): number | undefined {
  return value !== undefined && DELAY_SECONDS.test(value.trim()) ? Number(value.trim()) : undefined;
}

/** "30 s", "15 min", "2 h": rounded up, so the client never comes back too early. */
export function waitText(lang: Language, seconds: number): string {
  if (seconds <= WAIT_SECONDS_MAX) return t(lang, 'wait.seconds', { n: Math.max(1, Math.ceil(seconds)) });
  const minutes = Math.ceil(seconds / 60);
  if (minutes <= WAIT_MINUTES_MAX) return t(lang, 'wait.minutes', { n: minutes });
  return t(lang, 'wait.hours', { n: Math.ceil(seconds / 3600) });
}

/** Statuses that pass with time: a page for one says when to come back. */
const TRANSIENT = new Set([429, 502, 503, 504]);

/**
 * When to try again: the known wait ("Try again in 30 s") when the answer has a Retry-After,
 * "Try again later" for a transient status without one, nothing otherwise.
 */
export function retryText(lang: Language, status: number, retryAfter: string | undefined): string | undefined {
  const seconds = retryAfterSeconds(retryAfter);
  if (seconds !== undefined) return t(lang, 'retry.in', { wait: waitText(lang, seconds) });
  return TRANSIENT.has(status) ? t(lang, 'retry.later') : undefined;
}
