import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS, GatewayError, type ErrorCode } from '../../../src/errors.js';
import { bearerChallenge } from '../../../src/auth/challenge.js';

test('every 401 code carries a WWW-Authenticate even when raised without one (RFC 9110 §15.5.2)', () => {
  const codes = (Object.keys(ERRORS) as ErrorCode[]).filter((c) => ERRORS[c].status === 401);
  assert.ok(codes.length > 5);
  for (const code of codes) assert.match(new GatewayError(code, 'detail').headers['www-authenticate'] ?? '', /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ realm="[^"]+"/, code);
  assert.equal(new GatewayError('WEBHOOK_SIGNATURE_INVALID').headers['www-authenticate'], 'X-Hub-Signature-256 realm="whatsapp"');
  // A challenge set by the caller is kept; other statuses get none.
  assert.equal(new GatewayError('AUTH_FAILED', undefined, { 'www-authenticate': 'Basic realm="x"' }).headers['www-authenticate'], 'Basic realm="x"');
  assert.equal(new GatewayError('IP_DENIED').headers['www-authenticate'], undefined);
});

test('bearer challenges carry only the public message, never the detail', () => {
  for (const code of ['AUTH_INVALID', 'AUTH_EXPIRED', 'AUTH_REVOKED', 'AUTH_DISABLED', 'AUTH_AMBIGUOUS', 'ROLE_FORBIDDEN'] as const) {
    const c = bearerChallenge(code);
    const description = /error_description="([^"]*)"/.exec(c)?.[1];
    assert.equal(description, ERRORS[code].message, code);
  }
  assert.equal(bearerChallenge('AUTH_REQUIRED'), 'Bearer realm="crm-gateway"', 'no error without a token (RFC 6750 §3.1)');
});
