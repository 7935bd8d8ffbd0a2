import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { SECURITY_EVENTS, type EventFields, type SecurityEvent } from '../../../src/log/events.js';
import type { Logger } from '../../../src/log/logger.js';
import type { AlertType, RaiseAlert } from '../../../src/audit/alerts/rules.js';
import type { ContainmentConfig } from '../../../src/config/schema.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const registry = SECURITY_EVENTS as Record<string, { readonly fields: readonly string[]; readonly summary: string }>;
const NAMES = Object.keys(registry).sort();
const isSecurityEvent = (name: string): boolean => Object.hasOwn(registry, name);

/**
 * Where a `security(x, …)` call may take its event from a variable: loggers handing an event on
 * (the buffer, the cluster worker's and the CLI's wrappers) and the writer with its observers
 * (src/audit/writer/, src/main.ts). Anywhere else a name that is not written out in the call
 * cannot be checked here, so it fails the test.
 */
const FORWARDERS = ['src/log/buffered.ts', 'src/server/cluster.ts', 'src/cli/context.ts', 'src/main.ts', 'src/audit/writer/'];
const forwards = (rel: string): boolean => FORWARDERS.some((f) => (f.endsWith('/') ? rel.startsWith(f) : rel === f));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Emissions {
  /** Event names written out at a call site, with where. */
  readonly literal: Map<string, string[]>;
  /** Names a template such as `alert.${type}` can produce, as patterns, with where. */
  readonly templates: { pattern: RegExp; where: string }[];
  /** Alert types raised with a literal type (`raise('failed_logins_ip', …)`). */
  readonly alerts: Set<string>;
  /** `security(x, …)` calls whose name is not written out, outside FORWARDERS. */
  readonly unchecked: string[];
}

/** Every emission in src: `log.security(…)` and `security(…)` calls, records written with a literal `event:`, raised alerts. */
function scanEmissions(): Emissions {
  const out: Emissions = { literal: new Map(), templates: [], alerts: new Set(), unchecked: [] };
  const add = (name: string, where: string): void => void out.literal.set(name, [...(out.literal.get(name) ?? []), where]);
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const rel = relative(ROOT, file);
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const at = (n: ts.Node): string => `${rel}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`;
    /** The names an expression can evaluate to, when they are written out (a literal, or either arm of `a ? 'x' : 'y'`). */
    const names = (e: ts.Expression): string[] | undefined => {
      if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
      if (ts.isParenthesizedExpression(e) || ts.isSatisfiesExpression(e)) return names(e.expression);
      if (ts.isConditionalExpression(e)) {
        const [a, b] = [names(e.whenTrue), names(e.whenFalse)];
        return a && b ? [...a, ...b] : undefined;
      }
      return undefined;
    };
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n) && n.arguments.length > 0) {
        const callee = n.expression;
        const method = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : undefined;
        const first = n.arguments[0] as ts.Expression;
        if (method === 'security') {
          const written = names(first);
          if (written) for (const name of written) add(name, at(n));
          else if (ts.isTemplateExpression(first)) {
            const source = [first.head.text, ...first.templateSpans.map((s) => `\0${s.literal.text}`)].join('');
            const pattern = new RegExp(`^${source.split('\0').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[a-z0-9_]+')}$`);
            out.templates.push({ pattern, where: at(n) });
          } else if (!forwards(rel)) out.unchecked.push(`${at(n)}: ${first.getText(sf)}`);
        }
        if (method === 'raise' && ts.isStringLiteral(first)) out.alerts.add(first.text);
      }
      // A record a log stream writes itself (src/audit/writer: `audit.lines_dropped`).
      if (ts.isPropertyAssignment(n) && n.name.getText(sf) === 'event') {
        const written = names(n.initializer);
        if (written) for (const name of written) add(name, at(n));
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}

const emissions = scanEmissions();

test('every event emitted in src is in the registry (src/log/events.ts)', () => {
  const unknown = [...emissions.literal].filter(([name]) => !isSecurityEvent(name)).map(([name, where]) => `${name} (${where.join(', ')})`);
  assert.deepEqual(unknown, [], 'add these events to SECURITY_EVENTS');
  for (const { pattern, where } of emissions.templates) {
    assert.ok(NAMES.some((n) => pattern.test(n)), `${where}: no registered event matches ${pattern}`);
  }
  for (const type of emissions.alerts) assert.ok(isSecurityEvent(`alert.${type}`), `alert ${type} is raised but alert.${type} is not registered`);
  assert.deepEqual(emissions.unchecked, [], 'write the event name out in the call (a literal, or `cond ? \'a.x\' : \'a.y\'`)');
});

test('every registered event is emitted somewhere (no dead names)', () => {
  const dynamic = (name: string): boolean => emissions.templates.some((t) => t.pattern.test(name));
  const dead = NAMES.filter((n) => !emissions.literal.has(n) && !dynamic(n));
  assert.deepEqual(dead, []);
  // `alert.${type}` matches every alert name: each must also be raised with its type written out.
  const notRaised = NAMES.filter((n) => n.startsWith('alert.')).filter((n) => !emissions.alerts.has(n.slice('alert.'.length)));
  assert.deepEqual(notRaised, []);
  // The scan must have found the emitters at all (a broken scan would pass vacuously).
  assert.ok(emissions.literal.size > 90, `only ${emissions.literal.size} literal event names found`);
  assert.ok(emissions.templates.some((t) => t.pattern.test('alert.failed_logins_ip')), 'the alert emission was not found');
});

test('registry entries are well formed', () => {
  for (const name of NAMES) {
    assert.match(name, /^[a-z]+\.[a-z0-9_]+$/, name);
    const { fields, summary } = registry[name] as { fields: readonly string[]; summary: string };
    assert.equal(new Set(fields).size, fields.length, `${name}: a field is listed twice`);
    for (const f of fields) assert.ok(!['time', 'event'].includes(f), `${name}: ${f} is set by the writer`);
    assert.match(summary, /^\S.*\.$/, `${name}: one sentence`);
    assert.ok(!summary.includes('\n'), `${name}: one line`);
  }
});

test('docs/security-events.md lists exactly the registered events, each with its fields and summary', () => {
  const doc = readFileSync(join(ROOT, 'docs/security-events.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z0-9_.]+)` \| (.*) \| (.*) \|$/gm)].map((m) => {
    const fields = m[2] === '–' ? [] : [...(m[2] as string).matchAll(/`([^`]+)`/g)].map((f) => f[1]);
    return [m[1] as string, { fields, summary: (m[3] as string).replaceAll('\\|', '|') }] as const;
  });
  const documented = new Map(rows);
  assert.equal(documented.size, rows.length, 'an event is listed twice');
  assert.deepEqual([...documented.keys()].sort(), NAMES, 'regenerate: node --import tsx scripts/security-events-doc.mjs');
  for (const name of NAMES) {
    const entry = registry[name] as { fields: readonly string[]; summary: string };
    assert.deepEqual(documented.get(name), { fields: [...entry.fields], summary: entry.summary }, `${name}: regenerate the page`);
  }
});

/**
 * Never run: `npm run typecheck` proves that the names and fields are checked. Each
 * `@ts-expect-error` fails the typecheck when the error it expects no longer happens.
 */
export function typedEmitChecks(log: Logger): void {
  log.security('auth.login_failed', { user: 'u', clientIp: '192.0.2.1', reason: 'wrong password' });
  log.security('admin.clients_listed', {});
  log.security('store.redis_lost', { url: 'redis://x', worker: 1 }); // a wrapper's field is allowed anywhere
  // @ts-expect-error an unregistered event
  log.security('auth.login_faild', { user: 'u' });
  // @ts-expect-error a misspelt field
  log.security('auth.login_failed', { usr: 'u' });
  // @ts-expect-error a field of another event
  log.security('admin.token_revoked', { user: 'u' });
  const fields: EventFields<'request.denied'> = { code: 'IP_DENIED' };
  log.security('request.denied', fields);
  const compared: SecurityEvent = 'auth.lockout' satisfies SecurityEvent;
  // @ts-expect-error a renamed event no longer satisfies the registry
  void ('auth.locked_out' satisfies SecurityEvent);
  void compared;
}

/** Never run, as above: an alert carries the fields of its own `alert.<type>` entry. */
export function typedRaiseChecks(raise: RaiseAlert): void {
  raise('memory_high', 'rss', 'resident memory over its limit', { rssBytes: 1, thresholdBytes: 2 });
  // @ts-expect-error a field of another alert
  raise('memory_high', 'rss', 'resident memory over its limit', { lagP99Ms: 1 });
  // @ts-expect-error an alert type that does not exist
  raise('memory_hgh', 'rss', 'resident memory over its limit');
}

/**
 * Automatic containment matches its rules' `on` against the type of each `alert.*` event
 * (src/containment/auto.ts): a rule naming an alert type that no longer exists would never fire.
 */
const RULE_ALERTS_EXIST: [ContainmentConfig['rules'][number]['on']] extends [AlertType] ? true : false = true;
void RULE_ALERTS_EXIST;
