import { createHash } from 'node:crypto';
import { esc } from './overview-charts.js';

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}main{max-width:23rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}' +
  'h1{font-size:1.3rem;margin:0 0 .3rem}p.sub{margin:0 0 1rem;color:#4a5563;font-size:.9rem}label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}' +
  'input{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #6b7480;border-radius:4px;font:inherit}' +
  'button{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#2454d6;color:#fff;font:inherit;cursor:pointer}' +
  '.err{background:#fde8e8;color:#8a1c1c;padding:.5rem .7rem;border-radius:4px;font-size:.9rem}small{color:#4a5563}';
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/** The sign-in page's policy: nothing external, the form posts only to this origin. */
export const LOGIN_CSP = `default-src 'none'; style-src ${STYLE_HASH}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

/** The overview's own sign-in form (admin accounts of the gateway; the same checks as /auth/login). */
export function adminLoginPage(opts: { action: string; csrf: string; rd: string; error?: string | undefined; user?: string | undefined }): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>Sign in · security overview · crm-gateway</title><style>${STYLE}</style></head><body><main>` +
    `<h1>Security overview</h1><p class="sub">Sign in with a gateway account that has the admin role.</p>` +
    (opts.error ? `<p class="err" role="alert">${esc(opts.error)}</p>` : '') +
    `<form method="post" action="${esc(opts.action)}"><input type="hidden" name="csrf" value="${esc(opts.csrf)}"><input type="hidden" name="rd" value="${esc(opts.rd)}">` +
    `<label for="username">User name</label><input id="username" name="username" autocomplete="username" required maxlength="64" value="${esc(opts.user ?? '')}" autofocus>` +
    `<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">` +
    `<button type="submit">Sign in</button></form><p><small>crm-gateway admin listener</small></p></main></body></html>`
  );
}
