import { addUser, startAuthGateway, uniq, type AuthTestGateway } from './auth-gateway.js';
import { SessionClient } from './session-client.js';

/**
 * The gateway the adversarial review of src/auth attacked: session and bearer routes and a short
 * refresh reuse grace. Its tests now live with their subjects (auth-session, auth-websocket,
 * auth-jwt); each file starts its own from here.
 */
const ROUTES = `
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
    cors: { origins: ["https://other.test.local", "localhost"], credentials: true }
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
`;

export const REVIEW_PASSWORD = 'correct horse battery staple';
/** Long enough for the racing steps of the reuse tests, short enough to wait out. */
export const REVIEW_GRACE_MS = 1_500;

export function startReviewedAuthGateway(): Promise<AuthTestGateway> {
  return startAuthGateway({ routes: ROUTES, redis: true, env: { TRUSTED_PROXIES: '127.0.0.1' }, extraYaml: `auth: { refreshReuseGrace: ${REVIEW_GRACE_MS}ms }` });
}

/** A new staff user, signed in on the session route's host. */
export async function signedInStaff(gw: AuthTestGateway): Promise<SessionClient & { user: string }> {
  const user = uniq('review');
  await addUser(gw.auth, user, REVIEW_PASSWORD, ['staff']);
  const c = Object.assign(new SessionClient(gw, 'nocodb.test.local'), { user });
  await c.login(user, REVIEW_PASSWORD);
  return c;
}
