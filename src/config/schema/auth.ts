/** `auth`: tokens and sessions, single sign-on, second factors, passkeys, an external provider. */
import { z } from 'zod';
import { oidcSchema } from '../../auth/oidc/config.js';
import { DEFAULTS } from '../defaults.js';
import { bool, duration, hostname, list } from './fields.js';

export const authSchema = z
  .strictObject({
    /** Token issuer and audience: required claims, checked on every token. */
    issuer: z.string().min(1).default(DEFAULTS.authIssuer),
    audience: z.string().min(1).default(DEFAULTS.authAudience),
    /** Longest lifetime a token may have; longer ones are refused even when signed. */
    maxTokenTtl: duration.prefault(DEFAULTS.authMaxTokenTtl),
    /** Browser access-token lifetime (refresh tokens renew it). */
    sessionTtl: duration.prefault(DEFAULTS.authSessionTtl),
    refreshTtl: duration.prefault(DEFAULTS.authRefreshTtl),
    /** A refresh token presented again this soon after its first use is the same browser racing itself. */
    refreshReuseGrace: duration.prefault(DEFAULTS.authRefreshReuseGrace).pipe(z.number().max(60_000, 'at most 60s')),
    clockSkew: duration.prefault(DEFAULTS.authClockSkew),
    /**
     * One login for every session host (issue 14): the sign-in host holds the session and hands
     * each other host its own cookies through a one-time code. Default host: the first
     * `session`/`jwt-or-session` route's host (no new DNS name or certificate).
     */
    sso: z
      .strictObject({
        /** Off: each host signs in on its own, as before issue 14. */
        enabled: z.boolean().default(true),
        host: z.string().min(1).transform((h) => h.toLowerCase()).optional(),
      })
      .prefault({}),
    /** Second factors (src/auth/mfa/): users with any of these roles get no session without one (enrolment is forced). */
    mfa: z
      .strictObject({
        requiredRoles: list.prefault([...DEFAULTS.mfaRequiredRoles]),
      })
      .prefault({}),
    /**
     * Passkeys (WebAuthn). `signIn`: a passkey alone signs in (it is two factors itself: the
     * device and its PIN or biometric, user verification required), offered on the login page.
     * `rpId`: default the parent domain of the sign-in host (`example.com` for `crm.example.com`;
     * the sign-in host itself when its parent is a top-level name, as `localhost`).
     */
    passkeys: z
      .strictObject({
        signIn: bool.default(false),
        rpId: hostname.optional(),
        rpName: z.string().min(1).max(64).default(DEFAULTS.passkeyRpName),
      })
      .prefault({}),
    /** Sign-in with an external OpenID Provider (src/auth/oidc/config.ts); absent: off. */
    oidc: oidcSchema.optional(),
  })
  .prefault({});

/** `assertion`: the signed identity assertion upstreams verify (src/auth/assertion/; docs/applications.md, "Verifying who is calling"). */
export const assertionSchema = z
  .strictObject({
    /** The ES256 key file, shared by every instance; unset: `assertion-keys.json` in DATA_DIR, created at first start. */
    keyFile: z.string().min(1).optional(),
    /** The assertions' `iss`; unset: `https://<domain>` (with PUBLIC_HTTPS_PORT when not 443). */
    issuer: z.url({ protocol: /^https?$/, message: 'use an http(s) URL, e.g. https://example.com' }).optional(),
  })
  .prefault({});
