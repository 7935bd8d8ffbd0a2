import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactFields, scrubText } from '../../../src/audit/redact/redact.js';
import { shortTokenHash } from '../../../src/audit/redact/identifiers.js';

// One-time OAuth credentials in URLs (the SSO hand-off's code, the OIDC callback's code and
// state) never reach a log; the gateway's own `code` fields (error codes) stay as they are.

const CODE = 'Zq3v9Xc1m0PqW2eR7tY8uI4oP6aS5dF3gH1jK0lL9zX';
const STATE = 'stAte-0123456789abcdefghijklmnopqrstuvwxyzAB';

test('code, state and the other OAuth parameters of a query string appear only as a short hash', () => {
  const q = `code=${CODE}&state=${STATE}&iss=https%3A%2F%2Fidp.test&session_state=ss1&id_token=it1&access_token=at1&refresh_token=rt1&code_verifier=cv1&page=2`;
  const out = scrubText(q);
  assert.equal(
    out,
    `code=${shortTokenHash(CODE)}&state=${shortTokenHash(STATE)}&iss=https%3A%2F%2Fidp.test&session_state=${shortTokenHash('ss1')}&id_token=${shortTokenHash('it1')}&access_token=${shortTokenHash('at1')}&refresh_token=${shortTokenHash('rt1')}&code_verifier=${shortTokenHash('cv1')}&page=2`,
  );
  // Any spelling a server would read as the same name, and inside a whole URL.
  const url = scrubText(`https://b.test/auth/oidc/callback?STATE=${STATE}&%63ode=${CODE}`);
  assert.ok(!url.includes(CODE) && !url.includes(STATE), url);
});

test('a return URL carried in a parameter (rd) is scrubbed too, nested or not, and kept otherwise', () => {
  const start = `/auth/sso/start?${new URLSearchParams({ to: 't.test', state: STATE, rd: `https://t.test/x?code=${CODE}&page=1` }).toString()}`;
  const q = `rd=${encodeURIComponent(start)}`;
  const out = scrubText(q);
  assert.ok(!out.includes(STATE) && !out.includes(CODE), out);
  assert.ok(!decodeURIComponent(decodeURIComponent(decodeURIComponent(out))).includes(CODE), 'not even escaped');
  const inner = new URLSearchParams(new URL(new URLSearchParams(out).get('rd') as string, 'https://x').search);
  assert.equal(inner.get('to'), 't.test', 'the rest of the return URL is kept');
  assert.equal(inner.get('state'), shortTokenHash(STATE));
  // Without a credential in it, a return URL is written exactly as it came.
  const plain = `rd=${encodeURIComponent('/dash?x=1&page=2')}&lang=de`;
  assert.equal(scrubText(plain), plain);
});

test('access lines and events: the query is scrubbed, the gateway\'s own error codes in code fields are kept', () => {
  const access = redactFields({ path: '/auth/sso/callback', query: `code=${CODE}`, code: 'AUTH_SSO_CODE_INVALID', detail: 'malformed code', status: 400 });
  assert.deepEqual(access, { path: '/auth/sso/callback', query: `code=${shortTokenHash(CODE)}`, code: 'AUTH_SSO_CODE_INVALID', detail: 'malformed code', status: 400 });
  const reply = redactFields({ body: undefined, error: { code: 'AUTH_INVALID', status: 401 }, event: { code: 'OIDC_STATE_INVALID', state: 'open' } });
  assert.deepEqual(reply, { error: { code: 'AUTH_INVALID', status: 401 }, event: { code: 'OIDC_STATE_INVALID', state: 'open' } });
  // A JSON body quoted in a string keeps its code field too.
  assert.equal(scrubText('{"error":{"code":"AUTH_INVALID"}}'), '{"error":{"code":"AUTH_INVALID"}}');
});
