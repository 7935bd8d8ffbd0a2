import { createHash } from 'node:crypto';
import type { Count, OverviewRange, OverviewSnapshot, RouteFigures, TimePoint } from '../audit/overview/overview-data.js';
import { NO_ROUTE, OTHER } from '../audit/overview/tally.js';
import { MAX_KEY_LENGTH } from '../audit/overview/top-counts.js';
import type { UpstreamHealth } from './readiness.js';
import type { LocalTime } from './local-time.js';
import type { BackupStatus, CertificateStatus, ChainStatus, Status } from './status.js';
import { esc, horizontalBars, stackedColumns, type Column } from './overview-charts.js';
import type { Block } from '../containment/model.js';
import type { SecurityEvent } from '../log/events.js';
import { staffSessionsSection, type StaffSessionsView } from './sessions-view.js';

export const RANGES: readonly OverviewRange[] = ['24h', '7d', '30d'];
const RANGE_NAMES: Record<OverviewRange, string> = { '24h': 'last 24 hours', '7d': 'last 7 days', '30d': 'last 30 days' };
/** The page reloads itself this often (seconds); a meta refresh needs no script. */
const REFRESH_SECONDS = 60;
/** The command the reviewer copies: the CLI installed beside the gateway. */
const CLI = 'npx crm-gateway audit search';

const STYLE =
  'body{font:15px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:64rem;padding:0 1rem;color:#1d232a}' +
  'h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.08rem;margin:1.8rem 0 .5rem}.sub{color:#4f5963;margin:0}' +
  'header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline;justify-content:space-between}' +
  'nav a{display:inline-block;padding:.2rem .7rem;border:1px solid #8a95a0;border-radius:4px;margin-right:.3rem;color:#1d3f8f;text-decoration:none}' +
  'nav a[aria-current]{background:#1d3f8f;color:#fff;border-color:#1d3f8f}' +
  'form.out{display:inline}form.out button{font:inherit;padding:.2rem .7rem;border:1px solid #8a95a0;border-radius:4px;background:#fff;cursor:pointer}' +
  '.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.7rem;margin-top:1rem}' +
  '.card{border:1px solid #d5dbe0;border-left:6px solid #8a95a0;border-radius:4px;padding:.5rem .7rem}.card b{display:block;font-size:1.25rem}' +
  '.card small{color:#4f5963;display:block;overflow-wrap:anywhere}.ok{border-left-color:#1e8449}.warn{border-left-color:#b9770e}.fail{border-left-color:#c0392b}.off{border-left-color:#8a95a0}' +
  'svg.chart{max-width:100%;height:auto}.chart text{font:11px system-ui,sans-serif;fill:#1d232a}.chart .axis{fill:#4f5963}.chart .bar{fill:#c0392b}.chart .base{stroke:#9aa4ad}' +
  '.chart .fwd{fill:#5d8aa8}.chart .den{fill:#c0392b}.chart .sok{fill:#1e8449}.chart .sfail{fill:#d35400}' +
  '.key{font-size:.85rem;color:#4f5963}.key i{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;vertical-align:-1px}' +
  '.key .fwd{background:#5d8aa8}.key .den{background:#c0392b}.key .sok{background:#1e8449}.key .sfail{background:#d35400}' +
  '.empty{color:#4f5963}table{border-collapse:collapse;width:100%;margin:.3rem 0}td,th{border-bottom:1px solid #dde2e6;padding:.3rem .4rem;text-align:left;vertical-align:top}' +
  'td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}code.cmd{font-size:.78rem;background:#f2f4f6;padding:.1rem .3rem;border-radius:3px;user-select:all;overflow-wrap:anywhere}' +
  '.up{color:#1e8449;font-weight:600}.down{color:#c0392b;font-weight:600}.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(28rem,1fr));gap:0 1.5rem}' +
  '.route{margin:.8rem 0 1.2rem}.route h3{font-size:.98rem;margin:.2rem 0}';
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;
/** Nothing external, no script; the one form (sign out) posts to this origin. */
export const OVERVIEW_CSP = `default-src 'none'; style-src ${STYLE_HASH}; img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

export interface OverviewPageInput {
  readonly snapshot: OverviewSnapshot;
  /** Configured routes' upstreams, probed now. */
  readonly upstreams: readonly UpstreamHealth[];
  readonly certificate: CertificateStatus;
  readonly chain: ChainStatus;
  readonly backup: BackupStatus;
  readonly time: LocalTime;
  /** A browser sign-in (not a bearer token): the page offers to sign out. */
  readonly session?: { readonly subject: string; readonly csrf: string; readonly logoutPath: string } | undefined;
  readonly viewer: string;
  /** Blocks in force now (`crm-gateway block`, automatic containment); absent: not wired. */
  readonly blocks?: readonly Block[] | undefined;
  /** Staff sessions (src/auth/sessions), with revoke forms for a signed-in admin. */
  readonly staffSessions?: StaffSessionsView | undefined;
}

/** A value safe to paste into a POSIX shell. */
export function shellQuote(v: string): string {
  return /^[A-Za-z0-9._:@/=+,-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** The `audit search` command line behind a row: the same range, narrowed by the row's flags. */
export function searchCommand(range: OverviewRange, flags: readonly (readonly [string, string])[]): string {
  return [CLI, '--since', range, ...flags.flatMap(([k, v]) => [`--${k}`, shellQuote(v)])].join(' ');
}

/** The search flag of a path row: a path the tally cut to MAX_KEY_LENGTH is searched as the prefix it is. */
export function pathFlag(path: string): [string, string] {
  return ['path', path.length >= MAX_KEY_LENGTH ? `${path}*` : path];
}

/** The command behind a row; none for the tally's own groups ((none), (other)), which no search names. */
function cmd(range: OverviewRange, flags: readonly (readonly [string, string])[]): string {
  if (flags.some(([, v]) => v === NO_ROUTE || v === OTHER)) return '<span class="sub">—</span>';
  return `<code class="cmd">${esc(searchCommand(range, flags))}</code>`;
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.001 ? 2 : 1)}%`;
}

function card(kind: string, title: string, s: Status, value: string, small: string): string {
  return `<div class="card ${s.state}" data-status="${esc(kind)}" data-state="${s.state}"><span>${esc(title)}</span><b>${esc(value)}</b><small>${esc(small)}</small></div>`;
}

function figure(kind: string, title: string, value: string): string {
  return `<div class="card off" data-figure="${esc(kind)}"><span>${esc(title)}</span><b>${esc(value)}</b></div>`;
}

function trafficColumns(points: readonly TimePoint[], s: OverviewSnapshot, t: LocalTime): Column[] {
  return points.map((p) => ({
    start: p.start,
    label: t.bucket(p.start, s.bucketMinutes),
    tip: `${t.dateTime(p.start)}: ${p.requests} requests, ${p.denied} denied (${percent(p.requests > 0 ? p.denied / p.requests : 0)})`,
    parts: [Math.max(0, p.requests - p.denied), p.denied],
  }));
}

function labelEvery(points: number): number {
  return Math.max(1, Math.ceil(points / 8));
}

function topTable(kind: string, title: string, rows: readonly Count[], flag: (c: Count) => [string, string][], range: OverviewRange): string {
  const body =
    rows.length === 0
      ? `<p class="empty" data-top="${esc(kind)}">None in this range.</p>`
      : `<table data-top="${esc(kind)}"><thead><tr><th>${esc(title)}</th><th class="n">requests</th><th class="n">denied</th><th>in the logs</th></tr></thead><tbody>${rows
          .map(
            (c) =>
              `<tr data-value="${esc(c.value)}" data-count="${c.count}" data-denied="${c.denied}"><td>${esc(c.value)}</td><td class="n">${c.count}</td><td class="n">${c.denied}</td><td>${
                cmd(range, flag(c))
              }</td></tr>`,
          )
          .join('')}</tbody></table>`;
  return `<div><h3>${esc(`Top ${kind}`)}</h3>${body}</div>`;
}

function routeSection(r: RouteFigures | undefined, name: string, health: UpstreamHealth | undefined, s: OverviewSnapshot, t: LocalTime): string {
  const live = health ? (health.ok ? `<span class="up" data-health="up">up</span> (${health.ms} ms)` : `<span class="down" data-health="down">down</span> (${esc(health.error ?? 'no answer')})`) : '<span data-health="unknown">not probed</span>';
  const ms = r?.upstreamMs;
  const chart = r && r.overTime.length > 0 ? stackedColumns(`route-${name}`, `Requests and denials over time, route ${name}`, trafficColumns(r.overTime, s, t), { classes: ['fwd', 'den'], height: 56 }) : '';
  return (
    `<div class="route" data-route="${esc(name)}"><h3>${esc(name)}${health ? ` <small class="sub">${esc(health.upstream)}</small>` : ''}</h3>` +
    `<table><thead><tr><th>upstream now</th><th class="n">requests</th><th class="n">denied</th><th class="n">denial ratio</th><th class="n">p50</th><th class="n">p95</th><th class="n">p99</th></tr></thead><tbody>` +
    `<tr data-requests="${r?.requests ?? 0}" data-denied="${r?.denied ?? 0}"><td>${live}</td><td class="n">${r?.requests ?? 0}</td><td class="n">${r?.denied ?? 0}</td><td class="n">${percent(r?.denialRatio ?? 0)}</td>` +
    `<td class="n">${ms ? `${ms.p50} ms` : '—'}</td><td class="n">${ms ? `${ms.p95} ms` : '—'}</td><td class="n">${ms ? `${ms.p99} ms` : '—'}</td></tr></tbody></table>` +
    `${chart}<p>${cmd(s.range, [['route', name]])}</p></div>`
  );
}

/** Blocks in force now, soonest to end first, each with its audit search. */
export function blocksSection(blocks: readonly Block[] | undefined, t: LocalTime, range: OverviewRange): string {
  if (!blocks || blocks.length === 0) return '<p class="empty" data-list="blocks">No blocks in force. <code class="cmd">npx crm-gateway block list</code></p>';
  return `<table data-list="blocks"><thead><tr><th>what</th><th>until</th><th>by</th><th>why</th></tr></thead><tbody>${blocks
    .map(
      (b) =>
        `<tr data-block="${esc(`${b.kind}:${b.target}`)}" data-source="${b.source}"><td>${esc(b.kind)} <b>${esc(b.target)}</b></td><td>${esc(t.dateTime(new Date(b.until).toISOString()))}</td><td>${esc(b.source === 'auto' ? `automatic (${b.rule ?? ''})` : b.by)}</td><td>${esc(b.reason)}<br>${cmd(range, [['event', 'containment.']])}<br><code class="cmd">${esc(`npx crm-gateway unblock ${b.kind} ${shellQuote(b.target)}`)}</code></td></tr>`,
    )
    .join('')}</tbody></table>`;
}

/** The overview as a reviewer reads it each week: one snapshot plus what is live now. */
export function renderOverviewPage(p: OverviewPageInput): string {
  const s = p.snapshot;
  const t = p.time;
  const zone = t.zoneName(s.to);
  const nav = `<nav aria-label="Range">${RANGES.map((r) => `<a href="/security?range=${r}" data-range="${r}"${r === s.range ? ' aria-current="page"' : ''}>${r}</a>`).join('')}</nav>`;
  const who = p.session
    ? `<span class="sub">Signed in as ${esc(p.session.subject)}</span> <form class="out" method="post" action="${esc(p.session.logoutPath)}"><input type="hidden" name="csrf" value="${esc(p.session.csrf)}"><button type="submit">Sign out</button></form>`
    : `<span class="sub">Viewed as ${esc(p.viewer)}</span>`;
  const ratio = s.totalRequests > 0 ? s.totalDenials / s.totalRequests : 0;
  const down = p.upstreams.filter((u) => !u.ok);
  const upstreamCard: Status = { state: down.length === 0 ? 'ok' : 'fail', text: '' };

  const status =
    `<div class="cards">` +
    card('upstreams', 'Upstreams now', upstreamCard, down.length === 0 ? `all ${p.upstreams.length} up` : `${down.length} of ${p.upstreams.length} down`, down.length === 0 ? 'TCP probe of every route’s upstream' : `down: ${down.map((u) => u.route).join(', ')}`) +
    card('certificate', 'TLS certificate', p.certificate, p.certificate.text, p.certificate.validTo ? `until ${t.dateTime(p.certificate.validTo)} ${t.zoneName(p.certificate.validTo)}` : (p.certificate.detail ?? '')) +
    card('audit-chain', 'Audit log chains', p.chain, p.chain.state === 'ok' ? 'intact today' : p.chain.text, `${p.chain.state === 'ok' ? p.chain.text : (p.chain.detail ?? '')}${p.chain.checkedAt ? ` · checked ${t.dateTime(p.chain.checkedAt)}` : ''} · full check: npx crm-gateway audit verify`) +
    card('backup', 'Last verified backup', p.backup, p.backup.time ? t.dateTime(p.backup.time) : p.backup.text, p.backup.detail ?? '') +
    `</div>`;

  const figures =
    `<div class="cards">` +
    figure('requests', 'Requests', String(s.totalRequests)) +
    figure('denials', 'Denied', String(s.totalDenials)) +
    figure('denial-ratio', 'Denial ratio', percent(ratio)) +
    figure('rate-limited', 'Rate-limited', String(s.rateLimited)) +
    `</div>`;

  const allRoutes = [...new Set([...p.upstreams.map((u) => u.route), ...s.routes.map((r) => r.route)])];
  const routes = allRoutes.map((name) => routeSection(s.routes.find((r) => r.route === name), name, p.upstreams.find((u) => u.route === name), s, t)).join('');

  const si = s.signIns;
  const signInColumns: Column[] = si.overTime.map((b) => ({ start: b.start, label: t.bucket(b.start, s.bucketMinutes), tip: `${t.dateTime(b.start)}: ${b.succeeded} succeeded, ${b.failed} failed`, parts: [b.succeeded, b.failed] }));
  const signIns =
    `<div class="cards">` +
    figure('signins-succeeded', 'Sign-ins succeeded', String(si.succeeded)) +
    figure('signins-failed', 'Sign-ins failed', String(si.failed)) +
    figure('signins-locked', 'Lockouts', String(si.locked)) +
    figure('rejected-tokens', 'Tokens refused', String(si.rejectedTokens)) +
    figure('client-credentials-failed', 'Client secrets refused', String(si.clientCredentialsFailed)) +
    `</div><p class="key"><i class="sok"></i>succeeded<i class="sfail"></i>failed</p>` +
    stackedColumns('sign-ins', 'Sign-ins over time: succeeded and failed', signInColumns, { classes: ['sok', 'sfail'], labelEvery: labelEvery(signInColumns.length) }) +
    `<p>${cmd(s.range, [['event', ('auth.login_failed' satisfies SecurityEvent)]])}<br>${cmd(s.range, [['event', ('auth.login_succeeded' satisfies SecurityEvent)]])}<br>${cmd(s.range, [['event', ('auth.login_locked' satisfies SecurityEvent)]])}</p>`;

  const reasons =
    horizontalBars('denials', 'Denials by reason', s.denialsByReason.map((d) => ({ label: d.reason, count: d.count })), 'No denials in this range.') +
    (s.denialsByReason.length > 0
      ? `<table data-list="reasons"><tbody>${s.denialsByReason.map((d) => `<tr data-reason="${esc(d.reason)}"><td>${esc(d.reason)}</td><td class="n">${d.count}</td><td>${cmd(s.range, d.reason === 'RATE_LIMITED' ? [['status', '429']] : [['reason', d.reason]])}</td></tr>`).join('')}</tbody></table>`
      : '');

  const alerts =
    s.recentAlerts.length === 0
      ? '<p class="empty" data-list="alerts">No alerts in this range.</p>'
      : `<table data-list="alerts"><thead><tr><th>time (${esc(zone)})</th><th>alert</th><th>subject</th><th>message</th></tr></thead><tbody>${s.recentAlerts
          .map(
            (a) =>
              `<tr data-alert="${esc(a.alert)}"><td>${esc(t.dateTime(a.time))}</td><td>${esc(a.alert)}</td><td>${esc(a.subject)}</td><td>${esc(a.message)}<br>${cmd(s.range, [['event', `alert.${a.alert}`]])}</td></tr>`,
          )
          .join('')}</tbody></table>`;

  const blocks = blocksSection(p.blocks, t, s.range);
  const top = s.top;
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="refresh" content="${REFRESH_SECONDS}">` +
    `<title>Security overview · crm-gateway</title><style>${STYLE}</style></head><body>` +
    `<header><div><h1>Security overview</h1><p class="sub" data-period>${esc(RANGE_NAMES[s.range])}: ${esc(t.dateTime(s.from))} – ${esc(t.dateTime(s.to))} ${esc(zone)} (${esc(t.zone)})</p></div><div>${nav}</div><div>${who}</div></header>` +
    `<h2>Now</h2>${status}` +
    `<h2>Traffic</h2>${figures}<p class="key"><i class="fwd"></i>not denied<i class="den"></i>denied</p>` +
    stackedColumns('requests', 'Requests over time: not denied and denied', trafficColumns(s.overTime, s, t), { classes: ['fwd', 'den'], labelEvery: labelEvery(s.overTime.length) }) +
    `<h2>Routes</h2>${routes || '<p class="empty">No routes.</p>'}` +
    `<h2>Sign-ins</h2>${signIns}` +
    `<h2>Denials by reason <span data-total="${s.totalDenials}">(${s.totalDenials})</span></h2>${reasons}` +
    `<h2>Top users, clients, addresses and paths</h2><div class="grid2">` +
    topTable('users', 'user', top.users, (c) => [['user', c.value]], s.range) +
    topTable('clients', 'API client', top.clients, (c) => [['user', c.value]], s.range) +
    topTable('addresses', 'address', top.addresses, (c) => [['ip', c.value]], s.range) +
    topTable('paths', 'path', top.paths, (c) => [pathFlag(c.value)], s.range) +
    `</div><h2>Alerts</h2>${alerts}` +
    `<h2>Blocks in force <span data-total-blocks="${p.blocks?.length ?? 0}">(${p.blocks?.length ?? 0})</span></h2>${blocks}` +
    `<h2>Staff sessions <span data-total-sessions="${p.staffSessions?.sessions.length ?? 0}">(${p.staffSessions?.sessions.length ?? 0})</span></h2>${staffSessionsSection(p.staffSessions, t)}` +
    `<p class="sub">Served by the gateway's admin listener from its access and security logs; times in ${esc(t.zone)}; every command above runs beside the gateway (LOG_DIR).</p></body></html>`
  );
}
