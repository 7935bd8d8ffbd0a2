import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../context.js';
import { GatewayError } from '../errors.js';
import { readForm } from '../auth/form.js';
import { equalSecret } from '../auth/equal-secret.js';
import type { AuthService } from '../auth/service.js';
import { SESSION_ID } from '../auth/sessions/registry.js';
import type { StaffSession } from '../auth/sessions/types.js';
import { describeBrowser } from '../auth/sessions/user-agent.js';
import type { Logger } from '../log/logger.js';
import { esc } from './overview-charts.js';
import type { LocalTime } from './local-time.js';
import { sameOriginForm } from './origin.js';

/** The overview's revoke form posts here (admin listener, signed-in admin, same origin, CSRF token). */
export const SESSIONS_REVOKE_PATH = '/security/sessions/revoke';
/** Rows shown; the CLI lists them all. */
const MAX_ROWS = 200;

/** What the overview page needs for its sessions table. */
export interface StaffSessionsView {
  readonly sessions: readonly StaffSession[];
  /** The signed-in admin's form token: without it (a bearer token) the table has no revoke buttons. */
  readonly csrf?: string | undefined;
}

/** Staff sessions in force, newest first, each with a revoke form when the viewer signed in here. */
export function staffSessionsSection(v: StaffSessionsView | undefined, t: LocalTime): string {
  if (!v) return '<p class="empty" data-list="sessions">Sessions are not available (no auth service).</p>';
  if (v.sessions.length === 0) return '<p class="empty" data-list="sessions">No staff sessions. <code class="cmd">npx crm-gateway sessions list</code></p>';
  const rows = v.sessions.slice(0, MAX_ROWS).map((s) => {
    const revoke = v.csrf
      ? `<form class="out" method="post" action="${SESSIONS_REVOKE_PATH}"><input type="hidden" name="csrf" value="${esc(v.csrf)}"><input type="hidden" name="id" value="${esc(s.id)}"><button type="submit">Revoke</button></form>`
      : `<code class="cmd">npx crm-gateway sessions revoke ${esc(s.id)}</code>`;
    return (
      `<tr data-session="${esc(s.id)}" data-user="${esc(s.subject)}"><td><b>${esc(s.subject)}</b></td><td>${esc(describeBrowser(s.userAgent))}</td><td>${esc(s.ip || '—')}</td>` +
      `<td>${esc(t.dateTime(new Date(s.createdAt).toISOString()))}</td><td>${esc(t.dateTime(new Date(s.lastSeenAt).toISOString()))}</td><td>${esc(s.factors.join(', '))}</td><td>${revoke}</td></tr>`
    );
  });
  return `<table data-list="sessions"><thead><tr><th>user</th><th>browser</th><th>address</th><th>started</th><th>last seen</th><th>factors</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/**
 * The overview's revoke button: a signed-in admin (not a bearer token: a form needs the
 * sign-in's CSRF token) ends one staff session on every host and instance. Recorded as
 * `auth.session_revoked` with the admin as actor.
 */
export async function revokeFromOverview(ctx: RequestContext, res: ServerResponse, who: { subject: string; csrf: string }, auth: AuthService, log: Logger): Promise<void> {
  if (ctx.req.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${SESSIONS_REVOKE_PATH}`, { allow: 'POST' });
  if (!sameOriginForm(ctx.req)) throw new GatewayError('CSRF_REJECTED', `session revoke POST from Origin ${String(ctx.req.headers.origin)}`);
  const form = await readForm(ctx.req, 'overview sessions form');
  if (!equalSecret(who.csrf, form.get('csrf') ?? '')) throw new GatewayError('CSRF_REJECTED', 'overview sessions form token wrong');
  const id = form.get('id') ?? '';
  const session = SESSION_ID.test(id) ? await auth.sessions.registry.get(id) : undefined;
  if (!session) {
    log.security('auth.session_revoke_refused', { requestId: ctx.id, user: who.subject, sessionId: id.slice(0, 64), clientIp: ctx.address?.client.address, surface: 'admin' });
    throw new GatewayError('AUTH_SESSION_NOT_FOUND', `session ${id.slice(0, 64)} unknown`);
  }
  await auth.sessions.end(id, { actor: who.subject, reason: 'overview', requestId: ctx.id, clientIp: ctx.address?.client.address });
  ctx.reply.redirect(res, 303, '/security');
}
