import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../context.js';

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}main{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}' +
  'h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}input{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #bbc;border-radius:4px;font:inherit}' +
  'button{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#2454d6;color:#fff;font:inherit;cursor:pointer}.err{background:#fde8e8;color:#8a1c1c;padding:.5rem .7rem;border-radius:4px;font-size:.9rem}small{color:#667}';
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

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

export function loginPage(opts: { csrf: string; rd: string; error?: string | undefined; user?: string | undefined }): string {
  return page(
    'Sign in · crm-gateway',
    `<h1>Sign in</h1>${opts.error ? `<p class="err" role="alert">${escapeHtml(opts.error)}</p>` : ''}` +
      `<form method="post" action="/auth/login"><input type="hidden" name="csrf" value="${escapeHtml(opts.csrf)}"><input type="hidden" name="rd" value="${escapeHtml(opts.rd)}">` +
      `<label for="username">User name</label><input id="username" name="username" autocomplete="username" required maxlength="64" value="${escapeHtml(opts.user ?? '')}" autofocus>` +
      `<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">` +
      `<button type="submit">Sign in</button></form><p><small>crm-gateway</small></p>`,
  );
}

export function logoutPage(opts: { csrf: string }): string {
  return page(
    'Sign out · crm-gateway',
    `<h1>Sign out</h1><form method="post" action="/auth/logout"><input type="hidden" name="csrf" value="${escapeHtml(opts.csrf)}"><button type="submit">Sign out</button></form>`,
  );
}

/**
 * Writes a page of the gateway's own through the request's reply, with the page's policy over
 * the plain answers' defaults. Not no-referrer: under it browsers send `Origin: null` on the
 * form's own same-origin POST (Fetch spec), which the login CSRF check rightly refuses;
 * same-origin still sends no Referer (and so no return path) to any other site.
 */
export function sendPage(ctx: RequestContext, res: ServerResponse, status: number, html: string, formOrigins: readonly (string | undefined)[] = [], headers?: Readonly<Record<string, string>>): void {
  ctx.reply.answer(res, status, {
    body: { contentType: 'text/html; charset=utf-8', body: html },
    headers,
    page: { csp: csp(formOrigins), frameOptions: 'DENY', referrerPolicy: 'same-origin' },
  });
}
