import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import helmet from 'helmet';
import type { GatewayError } from './errors.js';
import { DEFAULT_LANGUAGE, type Language } from './i18n/language.js';
import { errorMessage, retryText, statusTitle, t } from './i18n/messages.js';

const PAGE_STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:0 .3em;overflow-wrap:anywhere}';
const PAGE_STYLE_HASH = `'sha256-${createHash('sha256').update(PAGE_STYLE).digest('base64')}'`;

/**
 * Headers on every answer the gateway writes itself (not on proxied responses): helmet's,
 * computed once at load rather than by running its middleware per answer. Lower-case names.
 */
export const OWN_SECURITY_HEADERS: Readonly<Record<string, string>> = collectHelmet(
  helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], styleSrc: [PAGE_STYLE_HASH], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
    },
    strictTransportSecurity: false, // set by the reply from config, and only over HTTPS
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
  }),
);

/** What a helmet middleware sets, read off a stand-in response. */
function collectHelmet(middleware: ReturnType<typeof helmet>): Record<string, string> {
  const out: Record<string, string> = {};
  const res = { setHeader: (k: string, v: string) => (out[k.toLowerCase()] = String(v)), removeHeader: () => undefined };
  middleware({} as never, res as never, () => undefined);
  return Object.freeze(out);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function wantsHtml(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return /\btext\/html\b/i.test(accept) && !/^\s*application\/json/i.test(accept);
}

export interface ErrorBody {
  contentType: string;
  body: string;
}

/**
 * The client's view of an error: code, public message and request id; never the detail. JSON
 * keeps the registry's English message (API clients key on `code`); the HTML page is in
 * `language` and says when to come back if the error's `Retry-After` does.
 */
export function renderError(err: GatewayError, requestId: string, html: boolean, language: Language = DEFAULT_LANGUAGE): ErrorBody {
  if (!html) {
    return {
      contentType: 'application/json; charset=utf-8',
      body: JSON.stringify({ error: { code: err.code, message: err.publicMessage, requestId, ...(err.pointer !== undefined ? { pointer: err.pointer } : {}) } }),
    };
  }
  const title = statusTitle(language, err.status);
  const retry = retryText(language, err.status, err.headers['retry-after']);
  return {
    contentType: 'text/html; charset=utf-8',
    body:
      `<!doctype html><html lang="${language}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
      `<title>${escapeHtml(title)}</title><style>${PAGE_STYLE}</style></head><body><main><h1>${escapeHtml(title)}</h1>` +
      `<p>${escapeHtml(errorMessage(language, err.code))}</p>${retry ? `<p>${escapeHtml(retry)}</p>` : ''}` +
      `<p>${escapeHtml(t(language, 'page.code'))} <code>${escapeHtml(err.code)}</code> · ${escapeHtml(t(language, 'page.request'))} <code>${escapeHtml(requestId)}</code></p>` +
      `<p><small>crm-gateway</small></p></main></body></html>`,
  };
}

/** The same answer on a raw socket (a refused websocket upgrade or a parse error), then close. */
export function writeRawResponse(socket: Duplex, status: number, headers: Readonly<Record<string, string>>, body?: ErrorBody): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`, 'Connection: close', 'Cache-Control: no-store', 'X-Content-Type-Options: nosniff'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body) lines.push(`Content-Type: ${body.contentType}`, `Content-Length: ${Buffer.byteLength(body.body)}`);
  else lines.push('Content-Length: 0');
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body?.body ?? ''}`);
  // A client that never closes its side must not hold the connection open.
  setTimeout(() => socket.destroy(), HALF_OPEN_GRACE_MS).unref();
}

/** How long a refused connection may stay half-open after the answer. */
const HALF_OPEN_GRACE_MS = 2_000;
