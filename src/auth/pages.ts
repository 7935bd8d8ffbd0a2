import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../context.js';
import type { ErrorCode, GatewayError } from '../errors.js';
import type { Language } from '../i18n/language.js';
import { errorMessage, retryText, t, type MessageKey } from '../i18n/messages.js';

/** Inputs' border #767689: 4.4:1 against the white form (WCAG 1.4.11 asks 3:1 of a control's edge; #bbc was 1.9:1). */
const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}main{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}' +
  'h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}input{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #767689;border-radius:4px;font:inherit}' +
  'button{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#2454d6;color:#fff;font:inherit;cursor:pointer}.err{background:#fde8e8;color:#8a1c1c;padding:.5rem .7rem;border-radius:4px;font-size:.9rem}small{color:#667}' +
  'a.sso{display:block;margin-top:1rem;padding:.55rem;border:1px solid #2454d6;border-radius:4px;text-align:center;color:#2454d6;text-decoration:none}';
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/**
 * The login pages' own policy: nothing external, forms post only to this origin. `formOrigins`
 * are other gateway origins the answer to the POST redirects to (a validated return URL, the
 * logout's clearing chain): browsers apply form-action to the redirects after the POST too,
 * and without them they block the sign-in (or sign-out) outright.
 */
function csp(formOrigins: readonly (string | undefined)[]): string {
  const extra = formOrigins.filter((o): o is string => o !== undefined);
  return `default-src 'none'; style-src ${STYLE_HASH}; form-action 'self'${extra.map((o) => ` ${o}`).join('')}; frame-ancestors 'none'; base-uri 'none'`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A page of the gateway's own and the language it is written in. */
export interface Page {
  readonly language: Language;
  readonly html: string;
}

function page(language: Language, title: string, body: string): Page {
  return {
    language,
    html: `<!doctype html><html lang="${language}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} · crm-gateway</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`,
  };
}

/** What the sign-in form says after a refusal, where it says more than the error page would. */
const SIGN_IN_NOTICES: Partial<Record<ErrorCode, MessageKey>> = {
  AUTH_FAILED: 'signIn.failed',
  CSRF_REJECTED: 'signIn.formExpired',
  RATE_LIMITED: 'signIn.tooManyAttempts',
  AUTH_LOCKED: 'signIn.locked',
  ROLE_FORBIDDEN: 'signIn.notAdmin',
};

/** The refusal shown above the form, with when to try again if the error's Retry-After says. */
function signInNotice(lang: Language, err: GatewayError): string {
  const key = SIGN_IN_NOTICES[err.code];
  const message = key ? t(lang, key) : errorMessage(lang, err.code);
  const retry = retryText(lang, err.status, err.headers['retry-after']);
  return retry ? `${message} ${retry}` : message;
}

export interface LoginPageOptions {
  readonly csrf: string;
  readonly rd: string;
  readonly error?: GatewayError | undefined;
  readonly user?: string | undefined;
  /** Where the form posts: /auth/login on routed hosts, /security/login on the admin listener. */
  readonly action?: string | undefined;
  /** A line under the heading saying which accounts may sign in here. */
  readonly intro?: MessageKey | undefined;
  /** Sign-in with an identity provider (auth.oidc) under the form: its name on the button, or '' for a neutral label. */
  readonly provider?: string | undefined;
  /** A link to sign in with a passkey alone (auth.passkeys.signIn; src/auth/mfa/). */
  readonly passkey?: boolean | undefined;
  /** A second-factor field in the same form (the security overview's sign-in; src/auth/mfa/overview.ts). */
  readonly code?: boolean | undefined;
}

export function loginPage(lang: Language, opts: LoginPageOptions): Page {
  return page(
    lang,
    t(lang, 'signIn.title'),
    `<h1>${escapeHtml(t(lang, 'signIn.title'))}</h1>${opts.intro ? `<p>${escapeHtml(t(lang, opts.intro))}</p>` : ''}${opts.error ? `<p class="err" role="alert">${escapeHtml(signInNotice(lang, opts.error))}</p>` : ''}` +
      `<form method="post" action="${escapeHtml(opts.action ?? '/auth/login')}"><input type="hidden" name="csrf" value="${escapeHtml(opts.csrf)}"><input type="hidden" name="rd" value="${escapeHtml(opts.rd)}">` +
      `<label for="username">${escapeHtml(t(lang, 'signIn.user'))}</label><input id="username" name="username" autocomplete="username" required maxlength="64" value="${escapeHtml(opts.user ?? '')}" autofocus>` +
      `<label for="password">${escapeHtml(t(lang, 'signIn.password'))}</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">` +
      `${opts.code ? `<label for="code">${escapeHtml(t(lang, 'signIn.codeOptional'))}</label><input id="code" name="code" autocomplete="one-time-code" maxlength="32">` : ''}` +
      `<button type="submit">${escapeHtml(t(lang, 'signIn.submit'))}</button></form>${providerButton(lang, opts)}` +
      `${opts.passkey ? `<p><a id="passkey-sign-in" href="/auth/mfa/passkey?rd=${encodeURIComponent(opts.rd)}">${escapeHtml(t(lang, 'signIn.passkey'))}</a></p>` : ''}<p><small>crm-gateway</small></p>`,
  );
}

/** A link, not a form: a form's redirect to the provider would fall under form-action 'self'. */
function providerButton(lang: Language, opts: LoginPageOptions): string {
  if (opts.provider === undefined) return '';
  const label = opts.provider ? t(lang, 'signIn.withNamedProvider', { provider: opts.provider }) : t(lang, 'signIn.withProvider');
  return `<p><a class="sso" href="/auth/oidc/start?rd=${escapeHtml(encodeURIComponent(opts.rd))}">${escapeHtml(label)}</a></p>`;
}

export function logoutPage(lang: Language, opts: { csrf: string }): Page {
  return page(
    lang,
    t(lang, 'signOut.title'),
    `<h1>${escapeHtml(t(lang, 'signOut.title'))}</h1><form method="post" action="/auth/logout"><input type="hidden" name="csrf" value="${escapeHtml(opts.csrf)}"><button type="submit">${escapeHtml(t(lang, 'signOut.submit'))}</button></form>`,
  );
}

/**
 * Writes a page of the gateway's own through the request's reply, with the page's policy over
 * the plain answers' defaults. Not no-referrer: under it browsers send `Origin: null` on the
 * form's own same-origin POST (Fetch spec), which the login CSRF check rightly refuses;
 * same-origin still sends no Referer (and so no return path) to any other site.
 */
export function sendPage(ctx: RequestContext, res: ServerResponse, status: number, shown: Page, formOrigins: readonly (string | undefined)[] = [], headers?: Readonly<Record<string, string>>): void {
  ctx.reply.answer(res, status, {
    body: { contentType: 'text/html; charset=utf-8', body: shown.html },
    headers,
    language: shown.language,
    page: { csp: csp(formOrigins), frameOptions: 'DENY', referrerPolicy: 'same-origin' },
  });
}

/** The shared layout and its style's CSP hash, for page builders in other files (src/auth/mfa/pages.ts). */
export { page as pageLayout, STYLE_HASH };
