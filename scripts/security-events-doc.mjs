#!/usr/bin/env node
// Writes docs/security-events.md from the registry of security events (src/log/events.ts).
// Run after adding or changing an event:  node --import tsx scripts/security-events-doc.mjs
// test/unit/log/events.test.ts fails while the page and the registry disagree.
import { writeFileSync } from 'node:fs';
import { SECURITY_EVENTS, ENVELOPE_FIELDS } from '../src/log/events.ts';

/** One line on each family of events, in the order the page lists them. */
const FAMILIES = {
  acme: 'Certificates obtained from an ACME CA (`tls.acme`).',
  admin: 'The CLI (`crm-gateway users …`, `clients …`, `tokens …`) and the security overview. CLI events are written to the `cli` chain with `actor`, the operating-system user.',
  alert: 'Alerts: the rules of src/audit/alerts/ raise one as a security event, on the console and to ALERT_WEBHOOK_URL. Every alert has `alert` (its type), `subject` and `message`; automatic containment acts on some of them.',
  assertion: 'Keys of the identity assertion sent to upstreams.',
  audit: 'The audit logs themselves.',
  auth: 'Sign-in, sessions, second factors, tokens and single sign-on.',
  backup: 'Database backups (`crm-gateway backup …` and the schedule).',
  containment: 'Blocks of addresses, networks, users, clients and routes, by hand or automatic.',
  openapi: 'Request validation against a route’s OpenAPI spec.',
  ratelimit: 'Rate limits and their stores.',
  request: 'Refused requests.',
  store: 'PostgreSQL and Redis connections.',
  tls: 'The TLS listener and its certificate.',
  webhook: 'The WhatsApp webhook and client certificates of webhook routes.',
  websocket: 'Websockets the gateway closed.',
};

const code = (s) => `\`${s}\``;

export function renderSecurityEventsDoc() {
  const names = Object.keys(SECURITY_EVENTS).sort();
  const families = [...new Set(names.map((n) => n.slice(0, n.indexOf('.'))))];
  const missing = families.filter((f) => !(f in FAMILIES));
  if (missing.length > 0) throw new Error(`add a line for ${missing.join(', ')} to FAMILIES in scripts/security-events-doc.mjs`);
  const out = [
    '# Security events',
    '',
    '<!-- Generated from src/log/events.ts by scripts/security-events-doc.mjs; edit those, then run: node --import tsx scripts/security-events-doc.mjs -->',
    '',
    'Every line of the security stream (the `security` log files under LOG_DIR, and the `gateway_security_events` table with DATABASE_URL) is one of these events.',
    'Alert rules, the security overview and `crm-gateway audit report` recognise events by these names; `crm-gateway audit search --event NAME` finds them.',
    '',
    `Besides the fields below, every line has ${ENVELOPE_FIELDS.slice(0, 2).map(code).join(' and ')} (set by the writer; a caller field of either name is written as \`_time\` or \`_event\`), ` +
      `${code('worker')} in a cluster worker's lines and ${code('actor')} (the operating-system user) in the CLI's. A field is left out when its emitter has no value for it. Values are redacted before they are written (see [audit.md](audit.md)).`,
    '',
  ];
  for (const family of families) {
    out.push(`## ${family}`, '', FAMILIES[family], '', '| Event | Fields | Meaning |', '| --- | --- | --- |');
    for (const name of names.filter((n) => n.startsWith(`${family}.`))) {
      const { fields, summary } = SECURITY_EVENTS[name];
      out.push(`| ${code(name)} | ${fields.length > 0 ? fields.map(code).join(', ') : '–'} | ${summary.replaceAll('|', '\\|')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

if (import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const target = new URL('../docs/security-events.md', import.meta.url);
  writeFileSync(target, renderSecurityEventsDoc());
  console.log(`wrote ${target.pathname} (${Object.keys(SECURITY_EVENTS).length} events)`);
}
