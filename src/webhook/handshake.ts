import { equalSecret } from '../auth/equal-secret.js';
import { GatewayError } from '../errors.js';

/**
 * A challenge echoed back only when it is a short plain token: the answer then cannot carry
 * markup or script, whatever a browser makes of it. Meta sends a number.
 */
const CHALLENGE = /^[A-Za-z0-9._~-]{1,128}$/;

/** One value of a query parameter; a repeated one is ambiguous and refused. */
function single(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw new GatewayError('WEBHOOK_VERIFY_FAILED', `${name} repeated`);
  return all[0];
}

/**
 * Meta's subscription handshake: `hub.mode=subscribe`, `hub.verify_token` equal to ours,
 * `hub.challenge` a plain token. Returns the challenge to echo; throws WEBHOOK_VERIFY_FAILED.
 */
export function answerChallenge(query: string, verifyToken: string): string {
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(query);
  } catch {
    throw new GatewayError('WEBHOOK_VERIFY_FAILED', 'query unparseable');
  }
  const mode = single(params, 'hub.mode');
  const token = single(params, 'hub.verify_token');
  const challenge = single(params, 'hub.challenge');
  if (mode !== 'subscribe') throw new GatewayError('WEBHOOK_VERIFY_FAILED', `hub.mode ${mode === undefined ? 'missing' : 'not subscribe'}`);
  if (token === undefined || !equalSecret(token, verifyToken)) throw new GatewayError('WEBHOOK_VERIFY_FAILED', `hub.verify_token ${token === undefined ? 'missing' : 'wrong'}`);
  if (challenge === undefined || !CHALLENGE.test(challenge)) throw new GatewayError('WEBHOOK_VERIFY_FAILED', `hub.challenge ${challenge === undefined ? 'missing' : 'not a plain token'}`);
  return challenge;
}
