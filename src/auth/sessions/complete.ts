import type { RequestContext } from '../../context.js';
import type { SignedIn } from './types.js';

/**
 * Ends every successful sign-in (password, passkey, OIDC, after a second factor): creates the
 * StaffSession in the registry, sets this host's cookies bound to it (claims `sid` and `amr`),
 * logs `auth.login_succeeded` with the factors, and answers the browser with a redirect to
 * `returnTo` (through the sign-in host and the SSO hand-off when it is on another host).
 *
 * Built by createAuthEndpoints (src/auth/endpoints.ts) and handed to every sign-in flow through
 * the AuthEndpointKit (src/auth/paths.ts). It answers on the response of the request being
 * handled (the dispatch remembers it for `ctx`): call it from an AuthHandler, return after it,
 * and never write to `res` yourself afterwards. Sign-in gates (kit.gate, a second factor)
 * run first: when one answers (sends the browser to a second-factor page), no session is made.
 *
 * `returnTo` must already be checked (kit.returnTo); it is checked again.
 * Flows never set session cookies themselves.
 */
export type CompleteSignIn = (ctx: RequestContext, who: SignedIn, returnTo: string) => Promise<void>;
