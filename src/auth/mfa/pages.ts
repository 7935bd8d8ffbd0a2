import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../../context.js';
import type { GatewayError } from '../../errors.js';
import type { Language } from '../../i18n/language.js';
import { errorMessage, t } from '../../i18n/messages.js';
import { escapeHtml, pageLayout, STYLE_HASH, type Page } from '../pages.js';
import { MFA_SCRIPT_PATH, WEBAUTHN_SCRIPT_PATH } from './static.js';

const SCRIPTS = `<script src="${WEBAUTHN_SCRIPT_PATH}"></script><script src="${MFA_SCRIPT_PATH}"></script>`;

function notice(lang: Language, err: GatewayError | undefined): string {
  if (!err) return '';
  const text = err.code === 'MFA_INVALID' ? t(lang, 'secondFactor.failed') : err.code === 'MFA_REPLAYED' ? t(lang, 'secondFactor.replayed') : errorMessage(lang, err.code);
  return `<p class="err" role="alert" id="mfa-error" data-code="${escapeHtml(err.code)}">${escapeHtml(text)}</p>`;
}

function passkeyFailed(lang: Language): string {
  return `<p class="err" role="alert" id="passkey-failed" hidden>${escapeHtml(t(lang, 'secondFactor.passkeyFailed'))}</p>`;
}

const csrfField = (csrf: string): string => `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;

/** A passkey button and the form its credential is posted with (static/mfa.js). */
function passkeyButton(lang: Language, csrf: string, kind: 'auth' | 'register' | 'signin', label: string, action: string, rd?: string): string {
  const id = `passkey-${kind}`;
  const options = `/auth/mfa/passkey/options?for=${kind}${rd === undefined ? '' : `&rd=${encodeURIComponent(rd)}`}`;
  return (
    `<form id="${id}-form" method="post" action="${escapeHtml(action)}">${csrfField(csrf)}<input type="hidden" name="credential" value=""></form>` +
    `<button type="button" id="${id}" data-passkey="${kind === 'register' ? 'register' : 'auth'}" data-form="${id}-form" data-options="${escapeHtml(options)}">${escapeHtml(label)}</button>${passkeyFailed(lang)}`
  );
}

/** The second-factor step of a sign-in: a TOTP code, a recovery code, or a passkey. */
export function challengePage(lang: Language, opts: { csrf: string; totp: boolean; passkeys: boolean; error?: GatewayError | undefined }): Page {
  const totp = opts.totp
    ? `<p>${escapeHtml(t(lang, 'secondFactor.intro'))}</p><form method="post" action="/auth/mfa/totp">${csrfField(opts.csrf)}<label for="code">${escapeHtml(t(lang, 'secondFactor.code'))}</label>` +
      `<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus><button type="submit">${escapeHtml(t(lang, 'secondFactor.submit'))}</button></form>`
    : '';
  const passkey = opts.passkeys ? passkeyButton(lang, opts.csrf, 'auth', t(lang, 'secondFactor.passkey'), '/auth/mfa/passkey/verify') : '';
  const recovery =
    `<details><summary>${escapeHtml(t(lang, 'secondFactor.recovery'))}</summary><form method="post" action="/auth/mfa/recovery">${csrfField(opts.csrf)}` +
    `<label for="recovery">${escapeHtml(t(lang, 'secondFactor.recoveryCode'))}</label><input id="recovery" name="code" autocomplete="off" maxlength="32" required>` +
    `<button type="submit">${escapeHtml(t(lang, 'secondFactor.submit'))}</button></form></details>`;
  return pageLayout(lang, t(lang, 'secondFactor.title'), `<h1>${escapeHtml(t(lang, 'secondFactor.title'))}</h1>${notice(lang, opts.error)}${totp}${passkey}${recovery}${opts.passkeys ? SCRIPTS : ''}`);
}

/** TOTP enrolment (QR code and key, confirmed by a code), with a passkey as the alternative. */
export function enrolPage(lang: Language, opts: { csrf: string; qrSvg: string; secret: string; uri: string; error?: GatewayError | undefined }): Page {
  // The key in groups of four, as apps show it; the QR code carries the otpauth:// URI.
  const grouped = opts.secret.match(/.{1,4}/g)?.join(' ') ?? opts.secret;
  const qr = opts.qrSvg.replace('<svg ', `<svg width="200" height="200" role="img" aria-label="${escapeHtml(opts.uri)}" `);
  return pageLayout(
    lang,
    t(lang, 'secondFactor.setUp'),
    `<h1>${escapeHtml(t(lang, 'secondFactor.setUp'))}</h1>${notice(lang, opts.error)}<p>${escapeHtml(t(lang, 'secondFactor.enrolIntro'))}</p><div id="totp-qr">${qr}</div>` +
      `<p>${escapeHtml(t(lang, 'secondFactor.secret'))}: <code id="totp-secret" data-secret="${escapeHtml(opts.secret)}">${escapeHtml(grouped)}</code></p>` +
      `<form method="post" action="/auth/mfa/totp/enrol">${csrfField(opts.csrf)}<label for="code">${escapeHtml(t(lang, 'secondFactor.code'))}</label>` +
      `<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus><button type="submit">${escapeHtml(t(lang, 'secondFactor.confirm'))}</button></form>` +
      `<p>${escapeHtml(t(lang, 'secondFactor.registerPasskey'))}</p>${passkeyButton(lang, opts.csrf, 'register', t(lang, 'secondFactor.passkey'), '/auth/mfa/passkey/register')}${SCRIPTS}`,
  );
}

/** The recovery codes, shown once; `next` continues the sign-in (a form) or goes back (a link). */
export function codesPage(lang: Language, opts: { csrf: string; codes: readonly string[]; next: 'sign-in' | string }): Page {
  const list = `<ul id="recovery-codes">${opts.codes.map((c) => `<li><code>${escapeHtml(c)}</code></li>`).join('')}</ul>`;
  const next =
    opts.next === 'sign-in'
      ? `<form method="post" action="/auth/mfa/done">${csrfField(opts.csrf)}<button type="submit" id="continue">${escapeHtml(t(lang, 'secondFactor.continue'))}</button></form>`
      : `<p><a id="continue" href="${escapeHtml(opts.next)}">${escapeHtml(t(lang, 'secondFactor.continue'))}</a></p>`;
  return pageLayout(lang, t(lang, 'secondFactor.codesTitle'), `<h1>${escapeHtml(t(lang, 'secondFactor.codesTitle'))}</h1><p>${escapeHtml(t(lang, 'secondFactor.codesIntro'))}</p>${list}${next}`);
}

/** A passkey sign-in of its own (auth.passkeys.signIn). */
export function passkeySignInPage(lang: Language, opts: { csrf: string; rd: string; error?: GatewayError | undefined }): Page {
  return pageLayout(
    lang,
    t(lang, 'signIn.passkey'),
    `<h1>${escapeHtml(t(lang, 'signIn.passkey'))}</h1>${notice(lang, opts.error)}${passkeyButton(lang, opts.csrf, 'signin', t(lang, 'signIn.passkey'), '/auth/mfa/passkey/verify', opts.rd)}<p><a href="/auth/login">${escapeHtml(t(lang, 'signIn.title'))}</a></p>${SCRIPTS}`,
  );
}

/**
 * Writes a second-factor page: the sign-in pages' policy plus this origin's scripts (the WebAuthn
 * bundle and static/mfa.js, never inline) and fetch to this origin for the ceremony options.
 * `formOrigins`: the gateway origins the form's answer may redirect to (browsers apply
 * form-action to redirects after a POST).
 */
export function sendMfaPage(ctx: RequestContext, res: ServerResponse, status: number, shown: Page, formOrigins: readonly string[], headers?: Readonly<Record<string, string>>): void {
  const csp = `default-src 'none'; style-src ${STYLE_HASH}; script-src 'self'; connect-src 'self'; form-action 'self'${formOrigins.map((o) => ` ${o}`).join('')}; frame-ancestors 'none'; base-uri 'none'`;
  ctx.reply.answer(res, status, {
    body: { contentType: 'text/html; charset=utf-8', body: shown.html },
    headers: { 'cache-control': 'no-store', ...headers },
    language: shown.language,
    page: { csp, frameOptions: 'DENY', referrerPolicy: 'same-origin' },
  });
}
