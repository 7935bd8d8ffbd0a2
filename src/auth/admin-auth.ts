import type { IncomingMessage } from 'node:http';
import { isGatewayError } from '../errors.js';
import { readBearer } from './credentials.js';
import type { AuthService } from './service.js';

/**
 * Who is asking on the admin listener (the security overview): a bearer access token, checked
 * exactly as on a `jwt` route (signature, claims, revocation, disabled account). The admin
 * listener is plain HTTP on loopback, where the `__Host-` session cookies are never sent: scripts
 * send a bearer token (`tokens issue --client ops --roles admin`), people sign in on the
 * listener's own form (src/admin/signin.ts). A refused token is "nobody" (the caller answers
 * 401); a token that could not be checked (its store down, 5xx) is thrown as it is, so an
 * outage is told as one and not as bad credentials.
 */
export function createAdminAuth(auth: AuthService): (req: IncomingMessage) => Promise<{ subject: string; roles: readonly string[] } | undefined> {
  return async (req) => {
    const bearer = readBearer(req);
    if (!bearer) return undefined;
    try {
      const claims = await auth.tokens.verify(bearer);
      if (claims.typ !== 'access') return undefined;
      const principal = await auth.principalFor(claims, 'jwt');
      return { subject: principal.subject, roles: principal.roles };
    } catch (err) {
      if (isGatewayError(err) && err.status < 500) return undefined;
      throw err;
    }
  };
}
