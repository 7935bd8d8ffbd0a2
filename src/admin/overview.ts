import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayDeps } from '../deps.js';
import type { Logger } from '../log/logger.js';
import type { OverviewSnapshot } from '../audit/overview-data.js';
import { esc, horizontalBars, timeColumns } from './overview-charts.js';

export const OVERVIEW_PATH = '/security';
export const OVERVIEW_JSON_PATH = '/security.json';
const ADMIN_ROLE = 'admin';
/** The page reloads itself this often (seconds); a meta refresh needs no script. */
const REFRESH_SECONDS = 60;

const STYLE =
  'body{font:15px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:60rem;padding:0 1rem;color:#1d232a}' +
  'h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .4rem}.sub{color:#5b6570;margin:0}' +
  '.chart text{font:12px system-ui,sans-serif;fill:#1d232a}.chart .axis{fill:#5b6570}.chart .bar{fill:#c0392b}' +
  '.chart .base{stroke:#9aa4ad}.failed .bar{fill:#d35400}.ips .bar{fill:#7d3c98}.empty{color:#5b6570}' +
  'table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #dde2e6;padding:.3rem .4rem;text-align:left;vertical-align:top}' +
  '.total{font-weight:600}';
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;
const CSP = `default-src 'none'; style-src ${STYLE_HASH}; img-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`;

export interface OverviewDeps {
  readonly adminAuth?: GatewayDeps['adminAuth'];
  readonly overview?: GatewayDeps['securityOverview'];
  readonly log: Logger;
}

/** The page: three charts and the recent alerts, from one snapshot. */
export function renderOverview(s: OverviewSnapshot): string {
  const alerts =
    s.recentAlerts.length === 0
      ? '<p class="empty" data-list="alerts">No alerts in the last 24 hours.</p>'
      : `<table data-list="alerts"><thead><tr><th>time (UTC)</th><th>alert</th><th>subject</th><th>message</th></tr></thead><tbody>${s.recentAlerts
          .map((a) => `<tr data-alert="${esc(a.alert)}"><td>${esc(a.time.slice(0, 19).replace('T', ' '))}</td><td>${esc(a.alert)}</td><td>${esc(a.subject)}</td><td>${esc(a.message)}</td></tr>`)
          .join('')}</tbody></table>`;
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${REFRESH_SECONDS}">` +
    `<title>Security overview · crm-gateway</title><style>${STYLE}</style></head><body>` +
    `<h1>Security overview</h1><p class="sub">Last 24 hours: ${esc(s.from.slice(0, 16).replace('T', ' '))} – ${esc(s.to.slice(0, 16).replace('T', ' '))} UTC</p>` +
    `<h2>Denials by reason <span class="total" data-total="${s.totalDenials}">(${s.totalDenials})</span></h2>` +
    horizontalBars('denials', 'Denials by reason', s.denialsByReason.map((d) => ({ label: d.reason, count: d.count })), 'No denials in the last 24 hours.') +
    `<h2>Failed logins per hour</h2><div class="failed">${timeColumns('failed-logins', 'Failed logins per hour', s.failedLoginsByHour)}</div>` +
    `<h2>Top denied IPs</h2><div class="ips">${horizontalBars('denied-ips', 'Top denied client IPs', s.topDeniedIps.map((d) => ({ label: d.ip, count: d.count })), 'No denied clients in the last 24 hours.')}</div>` +
    `<h2>Recent alerts</h2>${alerts}` +
    `<p class="sub">Served by the gateway's admin listener; data: the security log.</p></body></html>`
  );
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    ...extra,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * `/security` (HTML) and `/security.json` on the admin listener, for the admin role only:
 * without `adminAuth`, or without an admin principal, the answer is 401/403 (fail closed).
 * Returns false for other paths.
 */
export function handleOverview(deps: OverviewDeps, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  if (path !== OVERVIEW_PATH && path !== OVERVIEW_JSON_PATH) return false;
  const refuse = (status: 401 | 403, reason: string, subject?: string): void => {
    deps.log.security('admin.overview_denied', { reason, user: subject, clientIp: req.socket.remoteAddress, path });
    send(res, status, 'application/json', JSON.stringify({ error: status === 401 ? 'authentication required' : 'admin role required' }), status === 401 ? { 'www-authenticate': 'Bearer' } : {});
  };
  const auth = deps.adminAuth;
  if (!auth) {
    refuse(403, 'admin authentication is not configured');
    return true;
  }
  auth(req).then(
    (who) => {
      if (!who) return refuse(401, 'no valid admin credentials');
      if (!who.roles.includes(ADMIN_ROLE)) return refuse(403, 'not an admin', who.subject);
      if (!deps.overview) return send(res, 503, 'application/json', JSON.stringify({ error: 'the security overview is not available' }));
      const snapshot = deps.overview.snapshot();
      deps.log.security('admin.overview_viewed', { user: who.subject, clientIp: req.socket.remoteAddress, path });
      if (path === OVERVIEW_JSON_PATH) send(res, 200, 'application/json', JSON.stringify(snapshot));
      else send(res, 200, 'text/html; charset=utf-8', renderOverview(snapshot));
    },
    (err: Error) => refuse(401, `admin authentication failed: ${err.message}`),
  );
  return true;
}
