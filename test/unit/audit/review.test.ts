// Adversarial review of the audit log: tamper evidence at the start of a chain, redaction of
// credentials in every spelling, and search/report output that a client-chosen value cannot fake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestAudit } from '../../helpers/audit.js';
import { verifyLogDir } from '../../../src/audit/offline/verify.js';
import { FileHeadStore } from '../../../src/audit/writer/heads.js';
import { redactFields } from '../../../src/audit/redact/redact.js';
import { formatMatch, searchLogs } from '../../../src/audit/offline/search.js';
import { dailyReport, formatDailyReport } from '../../../src/audit/offline/report.js';

const fileOf = (dir: string, prefix: string): string => readdirSync(dir).find((n) => n.startsWith(prefix) && n.endsWith('.log')) as string;

test('lines removed from the start of the oldest file are caught by the chain heads', async () => {
  const audit = await startTestAudit({}, { keep: true });
  try {
    for (let i = 0; i < 20; i++) audit.log.access({ requestId: `r${i}`, method: 'GET', path: `/p/${i}`, status: 200 });
    await audit.log.close();
    const name = fileOf(audit.dir, 'access-');
    const lines = readFileSync(join(audit.dir, name), 'utf8').split('\n').filter((l) => l !== '');
    // The attacker drops the first five lines: what is left still links line to line.
    writeFileSync(join(audit.dir, name), `${lines.slice(5).join('\n')}\n`);
    const r = await verifyLogDir(audit.dir, { records: await new FileHeadStore(audit.dir).load(), from: 'file' });
    assert.equal(r.ok, false, 'verify must fail');
    assert.deepEqual(r.problems.map((p) => [p.kind, p.file, p.line]), [['removed', name, 1]]);
    assert.match(r.problems[0]?.message ?? '', /seq 1\.\.5 were removed from the start/);
  } finally {
    await audit.close();
    rmSync(audit.dir, { recursive: true, force: true });
  }
});

test('an untouched chain with heads still verifies: no false removal at its start', async () => {
  const audit = await startTestAudit({}, { keep: true });
  try {
    for (let i = 0; i < 5; i++) audit.log.access({ requestId: `r${i}`, status: 200 });
    await audit.log.close();
    const name = fileOf(audit.dir, 'access-');
    const r = await verifyLogDir(audit.dir, { records: await new FileHeadStore(audit.dir).load(), from: 'file' });
    assert.equal(r.ok, true, JSON.stringify(r.problems));
    assert.ok(r.chains.some((c) => c.chain === 'access' && c.lines === 5), name);
  } finally {
    await audit.close();
    rmSync(audit.dir, { recursive: true, force: true });
  }
});

test('credentials in URL userinfo, in any spelling of the listed names, and quoted JSON pairs never reach a line', async () => {
  const audit = await startTestAudit({}, { keep: true });
  const secrets = ['URLPASS-1a2b', 'URLTOKEN-3c4d', 'XCAUTH-5e6f', 'XCAUTH2-7a8b', 'MBSESS-9c0d', 'JSONPW-1e2f', 'JSONTOK-3a4b', '34600999888', '34611222333', '34622333444', 'message text never'];
  try {
    audit.log.security('store.redis_lost', { error: 'connect ECONNREFUSED redis://:URLPASS-1a2b@10.0.0.5:6379' });
    audit.log.app('warn', 'upstream https://URLTOKEN-3c4d@git.example/x failed', { upstream: 'http://admin:URLPASS-1a2b@127.0.0.1:8000/' });
    audit.log.access({ query: 'xc_auth=XCAUTH-5e6f&page=2', headers: { xcAuth: 'XCAUTH2-7a8b', X_Metabase_Session: 'MBSESS-9c0d' } });
    audit.log.security('request.denied', { detail: 'upstream said {"password":"JSONPW-1e2f","access_token": "JSONTOK-3a4b","wa_id":34600999888}' });
    audit.log.security('webhook.whatsapp', { recipientId: '34611222333', customerPhone: '+34 622 333 444', messageBody: 'message text never' });
    await audit.log.flush(5_000);
    const text = readdirSync(audit.dir)
      .filter((n) => n.endsWith('.log'))
      .map((n) => readFileSync(join(audit.dir, n), 'utf8'))
      .join('\n') + audit.console();
    for (const s of secrets) assert.ok(!text.includes(s), `${s} was written`);
    // What stays useful: the user name of the URL, correlatable keyed hashes of phone numbers.
    assert.match(text, /redis:\/\/:\[redacted\]@10\.0\.0\.5/);
    assert.match(text, /http:\/\/admin:\[redacted\]@127\.0\.0\.1/);
    assert.match(text, /"recipientId":"id:[0-9a-f]{16}"/);
    assert.match(text, /\\"wa_id\\":\\"id:[0-9a-f]{16}\\"/);
  } finally {
    await audit.close();
  }
  // Names that describe a credential (or a phone number id) are kept as before.
  assert.deepEqual(redactFields({ keyFile: '/k', tokenId: 'j1', phone_number_id: '1055', sessionTtl: 60 }), { keyFile: '/k', tokenId: 'j1', phone_number_id: '1055', sessionTtl: 60 });
});

/** A login name as a client may type it: a fake second result line, ANSI erase and colour, a bidi override. */
const HOSTILE_USER = 'mallory\n2025-01-01T00:00:00.000Z security auth.login_succeeded user=admin\u001b[2K\u001b[31m\u009b1m\u202enimda';

test('audit search and report print client-chosen values as one inert line each', async () => {
  const audit = await startTestAudit({}, { keep: true });
  try {
    audit.log.security('auth.login_failed', { user: HOSTILE_USER, clientIp: '203.0.113.9', reason: 'unknown user' });
    await audit.log.flush(5_000);
    const out: string[] = [];
    const res = await searchLogs(audit.dir, { streams: ['security'], event: 'auth.login_failed' }, (m) => out.push(formatMatch(m)));
    assert.equal(res.matched, 1);
    const printed = out.join('\n');
    assert.equal(printed.split('\n').length, 1, printed);
    assert.ok(!/[\p{Cc}\u202e]/u.test(printed), printed);
    assert.match(printed, /user=mallory\\u\{a\}2025/);
    const report = formatDailyReport(await dailyReport(audit.dir, new Date().toISOString().slice(0, 10)));
    assert.ok(!report.split('\n').some((l) => /[\p{Cc}\u202e]/u.test(l)), report);
    assert.ok(!report.split('\n').some((l) => l.includes('auth.login_succeeded') && !l.includes('mallory')), report);
  } finally {
    await audit.close();
  }
});
