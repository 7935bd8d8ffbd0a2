import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyName, redactFields, scrubText, REDACTED } from '../../../src/audit/redact/redact.js';
import { IdentifierHasher, shortTokenHash } from '../../../src/audit/redact/identifiers.js';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startTestAudit, rawSecurity } from '../../helpers/audit.js';

test('every header named in the issue becomes a short hash, never its value', () => {
  const headers = {
    Authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl',
    Cookie: 'crmgw_session=abc123secretcookie',
    'Set-Cookie': ['crmgw_session=abc123secretcookie; HttpOnly'],
    'xc-auth': 'nocodb-auth-secret-value',
    'xc-token': 'nocodb-api-token-value',
    'X-Metabase-Session': 'metabase-session-uuid-value',
    'X-Api-Key': 'api-key-value-0123456789',
    'hub.verify_token': 'verify-token-value',
  };
  const out = redactFields({ headers }) as { headers: Record<string, unknown> };
  const text = JSON.stringify(out);
  for (const v of ['eyJhbGciOiJIUzI1NiJ9', 'abc123secretcookie', 'nocodb-auth-secret-value', 'nocodb-api-token-value', 'metabase-session-uuid-value', 'api-key-value-0123456789', 'verify-token-value']) {
    assert.ok(!text.includes(v), `${v} leaked: ${text}`);
  }
  assert.match(String(out.headers.Authorization), /^Bearer sha256:[0-9a-f]{12}$/);
  assert.equal(out.headers['xc-token'], shortTokenHash('nocodb-api-token-value'));
  assert.equal(out.headers['X-Api-Key'], shortTokenHash('api-key-value-0123456789'));
  assert.equal(out.headers['hub.verify_token'], shortTokenHash('verify-token-value'));
});

test('fields named like password, secret or key are never written, not even hashed', () => {
  const out = redactFields({ password: 'hunter2', newPassword: 'x', clientSecret: 's', apiKey: 'k', privateKey: 'p', nested: { db_password: 'pw' } });
  assert.deepEqual(out, { password: REDACTED, newPassword: REDACTED, clientSecret: REDACTED, apiKey: REDACTED, privateKey: REDACTED, nested: { db_password: REDACTED } });
});

test('fields named like token or session appear only as a short hash', () => {
  const out = redactFields({ token: 'tok-1', refreshToken: 'tok-2', session: 'sess', jwt: 'a.b.c' });
  assert.equal(out.token, shortTokenHash('tok-1'));
  assert.equal(out.refreshToken, shortTokenHash('tok-2'));
  assert.equal(out.session, shortTokenHash('sess'));
});

test('names that describe a credential rather than hold it are kept (keyFile, tokenId, sessionTtl)', () => {
  assert.equal(classifyName('keyFile'), undefined);
  assert.equal(classifyName('tokenId'), undefined);
  assert.equal(classifyName('sessionTtl'), undefined);
  assert.deepEqual(redactFields({ keyFile: 'certs/gateway.key', tokenId: 'jti-1' }), { keyFile: 'certs/gateway.key', tokenId: 'jti-1' });
});

test('WhatsApp phone numbers are a keyed hash; message bodies never appear', () => {
  const keyOne = new IdentifierHasher('key-one-0123456789abcdef');
  const out = redactFields({ from: '+34 600 111 222', wa_id: '34600111222', recipient_id: '34600999888', text: { body: 'hola, mi DNI es 1234' }, body: 'raw body', caption: 'photo caption' }, keyOne);
  assert.equal(out.from, out.wa_id, 'the same number, formatted differently, hashes the same');
  assert.match(String(out.from), /^id:[0-9a-f]{16}$/);
  assert.notEqual(out.recipient_id, out.from);
  assert.equal(out.text, REDACTED);
  assert.equal(out.body, REDACTED);
  assert.equal(out.caption, REDACTED);
  assert.equal(out.wa_id, keyOne.hash('34600111222'));
  // Regression: the key was one per process (set by whichever logger was made last); each hasher has its own now.
  assert.equal(new IdentifierHasher('key-one-0123456789abcdef').hash('34600111222'), out.wa_id, 'the same key, the same hash');
  assert.notEqual(new IdentifierHasher('key-two-0123456789abcdef').hash('34600111222'), out.wa_id, 'the hash depends on LOG_HASH_KEY');
  assert.equal(out.wa_id, 'id:7a83f023058146d1', 'HMAC-SHA-256 of the digits, as it always was');
  // Without a hasher an identifier does not appear at all.
  assert.equal(redactFields({ from: '34600111222' }).from, REDACTED);
});

test('regression: the webhook phoneHashes were hashed twice (once by the handler, again as an identifier field); now once, like from', () => {
  const ids = new IdentifierHasher('key-one-0123456789abcdef');
  // The handler hashes with a hasher of the same key (LOG_HASH_KEY); the logger keeps those as they are.
  const handlers = new IdentifierHasher('key-one-0123456789abcdef');
  const out = redactFields({ phoneHashes: [handlers.hash('34600111222'), '+34 600 999 888'], from: '+34 600 111 222' }, ids);
  assert.deepEqual(out.phoneHashes, [out.from, ids.hash('34600999888')]);
});

test('query strings: values of secret-like names are redacted, others kept', () => {
  assert.equal(
    scrubText('hub.mode=subscribe&hub.verify_token=vt123&hub.challenge=42&page=2&password=hunter2&access_token=abc&api_key=k1'),
    `hub.mode=subscribe&hub.verify_token=${shortTokenHash('vt123')}&hub.challenge=42&page=2&password=${REDACTED}&access_token=${shortTokenHash('abc')}&api_key=${REDACTED}`,
  );
  assert.equal(scrubText('hub%2Everify_token=vt123'), `hub%2Everify_token=${shortTokenHash('vt123')}`);
});

test('bearer tokens and JWTs inside free text are hashed', () => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlMTIz';
  const out = scrubText(`upstream said: invalid token ${jwt}; header was Bearer abcdefgh12345678`);
  assert.ok(!out.includes(jwt) && !out.includes('abcdefgh12345678'), out);
  assert.ok(out.includes(shortTokenHash(jwt)));
});

test('errors, dates, buffers and cycles are written safely', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const out = redactFields({ error: new Error('failed with password=pw1'), at: new Date(0), buf: Buffer.from('secret bytes'), cyclic });
  assert.equal(out.error, `failed with password=${REDACTED}`);
  assert.equal(out.at, '1970-01-01T00:00:00.000Z');
  assert.equal(out.buf, '[binary 12 bytes]');
  assert.deepEqual(out.cyclic, { a: 1, self: '[elided]' });
});

// Credentials in every spelling (from the adversarial review of the audit log).
test('credentials in URL userinfo, in any spelling of the listed names, and quoted JSON pairs never reach a line', async () => {
  const audit = await startTestAudit({}, { keep: true });
  const secrets = ['URLPASS-1a2b', 'URLTOKEN-3c4d', 'XCAUTH-5e6f', 'XCAUTH2-7a8b', 'MBSESS-9c0d', 'JSONPW-1e2f', 'JSONTOK-3a4b', '34600999888', '34611222333', '34622333444', 'message text never'];
  try {
    audit.log.security('store.redis_lost', { error: 'connect ECONNREFUSED redis://:URLPASS-1a2b@10.0.0.5:6379' });
    audit.log.app('warn', 'upstream https://URLTOKEN-3c4d@git.example/x failed', { upstream: 'http://admin:URLPASS-1a2b@127.0.0.1:8000/' });
    audit.log.access({ query: 'xc_auth=XCAUTH-5e6f&page=2', headers: { xcAuth: 'XCAUTH2-7a8b', X_Metabase_Session: 'MBSESS-9c0d' } });
    audit.log.security('request.denied', { detail: 'upstream said {"password":"JSONPW-1e2f","access_token": "JSONTOK-3a4b","wa_id":34600999888}' });
    rawSecurity(audit.log)('webhook.whatsapp', { recipientId: '34611222333', customerPhone: '+34 622 333 444', messageBody: 'message text never' });
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
