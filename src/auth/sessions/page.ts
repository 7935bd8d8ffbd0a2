import type { Language } from '../../i18n/language.js';
import { t } from '../../i18n/messages.js';
import { escapeHtml, pageLayout, type Page } from '../pages.js';
import type { StaffSession } from './types.js';
import { describeBrowser } from './user-agent.js';

export const SESSIONS_PATH = '/auth/sessions';
export const SESSIONS_END_PATH = '/auth/sessions/end';
export const SESSIONS_END_OTHERS_PATH = '/auth/sessions/end-others';

/** `2026-12-06 13:20 UTC`: the page has no script, and the server's zone means nothing to the reader. */
export function utcMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function endForm(csrf: string, action: string, label: string, id?: string): string {
  return (
    `<form method="post" action="${action}"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}">` +
    `${id ? `<input type="hidden" name="id" value="${escapeHtml(id)}">` : ''}<button type="submit">${escapeHtml(label)}</button></form>`
  );
}

/**
 * "Your sessions": each with its browser, address, start, last use and factors, and a POST
 * form (CSRF token) to end it; one more to end every other one. Plain forms: no script. This
 * browser's own session is ended through the logout (which also clears each host's site data).
 */
export function sessionsPage(lang: Language, opts: { sessions: readonly StaffSession[]; current: string | undefined; csrf: string; notice?: string | undefined }): Page {
  const cur = opts.sessions.find((s) => s.id === opts.current);
  const others = opts.sessions.filter((s) => s.id !== opts.current);
  const item = (s: StaffSession): string =>
    // No accessible name: two sessions of the same browser would make two landmarks alike.
    `<section><h2>${escapeHtml(describeBrowser(s.userAgent))}${s.id === opts.current ? ` <small>(${escapeHtml(t(lang, 'sessions.current'))})</small>` : ''}</h2><dl>` +
    `<dt>${escapeHtml(t(lang, 'sessions.address'))}</dt><dd>${escapeHtml(s.ip || '—')}</dd>` +
    `<dt>${escapeHtml(t(lang, 'sessions.signedIn'))}</dt><dd>${escapeHtml(utcMinute(s.createdAt))}</dd>` +
    `<dt>${escapeHtml(t(lang, 'sessions.lastUsed'))}</dt><dd>${escapeHtml(utcMinute(s.lastSeenAt))}</dd>` +
    `<dt>${escapeHtml(t(lang, 'sessions.factors'))}</dt><dd>${escapeHtml(s.factors.join(', '))}</dd></dl>` +
    (s.id === opts.current ? endForm(opts.csrf, '/auth/logout', t(lang, 'sessions.signOut')) : endForm(opts.csrf, SESSIONS_END_PATH, t(lang, 'sessions.end'), s.id)) +
    `</section>`;
  return pageLayout(
    lang,
    t(lang, 'sessions.title'),
    `<h1>${escapeHtml(t(lang, 'sessions.title'))}</h1><p>${escapeHtml(t(lang, 'sessions.intro'))}</p>` +
      (opts.notice ? `<p role="status">${escapeHtml(opts.notice)}</p>` : '') +
      (cur ? item(cur) : '') +
      (others.length > 0 ? others.map(item).join('') + endForm(opts.csrf, SESSIONS_END_OTHERS_PATH, t(lang, 'sessions.endOthers')) : `<p>${escapeHtml(t(lang, 'sessions.none'))}</p>`),
  );
}
