import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerChallenge } from '../../../src/webhook/handshake.js';
import { GatewayError } from '../../../src/errors.js';

const TOKEN = '0123456789abcdef0123456789abcdef';

function refused(query: string, detail: RegExp): void {
  assert.throws(
    () => answerChallenge(query, TOKEN),
    (err: unknown) => err instanceof GatewayError && err.code === 'WEBHOOK_VERIFY_FAILED' && err.status === 403 && detail.test(err.detail ?? ''),
    query,
  );
}

test('subscribe with the right token echoes the challenge', () => {
  assert.equal(answerChallenge(`hub.mode=subscribe&hub.verify_token=${TOKEN}&hub.challenge=1158201444`, TOKEN), '1158201444');
  assert.equal(answerChallenge(`hub.challenge=abc-DEF_1.2~&hub.verify_token=${TOKEN}&hub.mode=subscribe`, TOKEN), 'abc-DEF_1.2~');
});

test('a wrong, missing or repeated token, mode or challenge is refused', () => {
  refused(`hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1`, /verify_token wrong/);
  refused(`hub.mode=subscribe&hub.verify_token=${TOKEN}x&hub.challenge=1`, /verify_token wrong/);
  refused(`hub.mode=subscribe&hub.verify_token=${TOKEN.slice(0, -1)}&hub.challenge=1`, /verify_token wrong/);
  refused(`hub.mode=subscribe&hub.challenge=1`, /verify_token missing/);
  refused(`hub.mode=unsubscribe&hub.verify_token=${TOKEN}&hub.challenge=1`, /mode not subscribe/);
  refused(`hub.verify_token=${TOKEN}&hub.challenge=1`, /mode missing/);
  refused(`hub.mode=subscribe&hub.verify_token=${TOKEN}`, /challenge missing/);
  refused(`hub.mode=subscribe&hub.verify_token=wrong&hub.verify_token=${TOKEN}&hub.challenge=1`, /repeated/);
  refused('', /mode missing/);
});

test('a challenge that is not a short plain token is never echoed', () => {
  for (const challenge of ['<script>alert(1)</script>', '%3Cb%3E', 'a b', 'x'.repeat(129), '', 'a%0d%0aSet-Cookie:x=1', 'ñ']) {
    refused(`hub.mode=subscribe&hub.verify_token=${TOKEN}&hub.challenge=${challenge}`, /challenge/);
  }
});
