import type { ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import type { BlockSet } from '../containment/blocks.js';
import type { Logger } from '../log/logger.js';
import type { CredentialLimiter } from '../ratelimit/login.js';
import type { AuthService } from './service.js';
import type { CompleteSignIn } from './sessions/complete.js';
import type { SignedIn } from './sessions/types.js';

/**
 * One of the gateway's own endpoints under `/auth/`. It answers on `res` (through ctx.reply),
 * or throws a GatewayError, which the dispatch turns into the refusal page or JSON.
 */
export type AuthHandler = (ctx: RequestContext, res: ServerResponse) => Promise<void>;

/**
 * Runs before CompleteSignIn makes a session: a second factor (issue 14, item 2) registers one
 * that, when `who` has not proved enough factors for its roles or the return route, sends the
 * browser to its own page and returns true (then no session is made). Returns false to let
 * the sign-in complete.
 */
export type SignInGate = (ctx: RequestContext, res: ServerResponse, who: SignedIn, returnTo: string) => Promise<boolean>;

/**
 * What every sign-in flow's endpoint factory gets (createMfaEndpoints, createOidcEndpoints, …):
 * built once in createAuthEndpoints; factories return an AuthHandler that the dispatch there
 * routes a path or a prefix to.
 */
export interface AuthEndpointKit {
  readonly cfg: GatewayConfig;
  readonly auth: AuthService;
  readonly log: Logger;
  readonly limits: { login: CredentialLimiter; token: CredentialLimiter };
  readonly blocks?: BlockSet | undefined;
  /** Ends a sign-in: session, cookies, event, redirect. See ./sessions/complete.ts. */
  readonly complete: CompleteSignIn;
  /** Registers a SignInGate (run in registration order by `complete`). */
  gate(g: SignInGate): void;
  /** A new CSRF token, its `__Host-` cookie set on ctx.reply; put it in a hidden `csrf` field. */
  freshCsrf(ctx: RequestContext): string;
  /** Whether a POSTed form's `csrf` field matches the cookie (and Origin, when sent, is this host). */
  formCsrfOk(ctx: RequestContext, form: URLSearchParams): boolean;
  /** A checked return URL (src/auth/return-to.ts): a path on this host or an https URL on a routed host. */
  returnTo(ctx: RequestContext, rd: string | null | undefined): string;
  /** The host that holds sessions and runs the SSO hand-off (auth.sso.host). */
  readonly signInHost: string;
  /** `https://host[:port]` on the gateway's public port. */
  origin(host: string): string;
  /** This request's routed host (lowercase). */
  thisHost(ctx: RequestContext): string;
  /**
   * For a page whose form POST ends in `complete` (pass to sendPage's formOrigins): the origins
   * its answer may redirect to, the sign-in host's included when the sign-in chains through it.
   */
  signInFormOrigins(ctx: RequestContext, returnTo: string): string[];
}

/**
 * The dispatch of `/auth/*`: exact paths and prefixes (a prefix ends with `/` and owns every
 * path under it). Only registered paths are the gateway's: Metabase's own `/auth/*` pages
 * (reset_password, …) still reach it on routes that send them.
 */
export class AuthPaths {
  private readonly exacts = new Map<string, AuthHandler>();
  private readonly prefixes: [string, AuthHandler][] = [];

  exact(path: string, handler: AuthHandler): this {
    if (this.exacts.has(path)) throw new Error(`auth path ${path} registered twice`);
    this.exacts.set(path, handler);
    return this;
  }

  prefix(prefix: string, handler: AuthHandler): this {
    if (!prefix.startsWith('/auth/') || !prefix.endsWith('/')) throw new Error(`auth prefix ${prefix} must start with /auth/ and end with /`);
    if (this.prefixes.some(([p]) => p === prefix)) throw new Error(`auth prefix ${prefix} registered twice`);
    this.prefixes.push([prefix, handler]);
    // Longest first, so /auth/mfa/webauthn/ could be given apart from /auth/mfa/.
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
    return this;
  }

  find(path: string): AuthHandler | undefined {
    const exact = this.exacts.get(path);
    if (exact) return exact;
    for (const [p, h] of this.prefixes) if (path.startsWith(p)) return h;
    return undefined;
  }
}
