import { z } from 'zod';
import { ROLE_PATTERN } from '../store/types.js';

/** A list given as a YAML list or a comma-separated string (as the environment gives it). */
const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== ''));

const role = z.string().regex(ROLE_PATTERN, 'a role: lower-case letters, digits, - and _ (as the users\' roles)');

const DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** Settings in the order a missing-setting problem is reported on (the first one given). */
const GIVEN_ORDER = ['issuer', 'clientId', 'clientSecret', 'caFile', 'redirectUri', 'buttonLabel', 'allowedEmailDomains', 'allowedGroups', 'defaultRoles', 'roleMapping'] as const;

/**
 * Where a problem of the whole section is reported: on the first setting given (so the message
 * names the variable that set it), else on the section.
 */
export function givenSetting(c: Partial<Record<(typeof GIVEN_ORDER)[number], unknown>>): string[] {
  const given = GIVEN_ORDER.find((k) => {
    const v = c[k];
    return Array.isArray(v) ? v.length > 0 : v !== undefined;
  });
  return given ? [given] : [];
}

/**
 * `auth.oidc`: sign-in with an external OpenID Provider (src/auth/oidc/). Absent: no OIDC, and
 * openid-client is never loaded. The client secret comes from OIDC_CLIENT_SECRET.
 */
export const oidcSchema = z
  .strictObject({
    /** The provider's issuer identifier: its discovery document is `<issuer>/.well-known/openid-configuration`. */
    issuer: z.url({ protocol: /^https$/, message: 'use the https issuer URL the provider publishes (e.g. https://accounts.google.com)' }).optional(),
    clientId: z.string().min(1).optional(),
    clientSecret: z.string().min(1).optional(),
    /** A private provider's CA (PEM), trusted for its requests besides the system's roots. */
    caFile: z.string().min(1).optional(),
    scopes: list.prefault(['openid', 'email', 'profile']),
    /**
     * The callback URL registered at the provider; default `https://<sign-in host>[:port]/auth/oidc/callback`.
     * It must be one of the gateway's own session hosts.
     */
    redirectUri: z.url({ protocol: /^https$/, message: 'use an https URL on a session host, ending in /auth/oidc/callback' }).optional(),
    /**
     * The claim that must be `true` for the email to count: `email_verified` (Google, Keycloak,
     * most providers); Entra ID sends none, but `xms_edov` (an optional claim: the email's domain
     * is verified by the tenant).
     */
    emailVerifiedClaim: z.string().min(1).default('email_verified'),
    /** Email domains whose people may sign in (after `@`, exact); empty: any. */
    allowedEmailDomains: list.pipe(z.array(z.string().transform((d) => d.toLowerCase()).refine((d) => DOMAIN.test(d), 'not a domain name (e.g. example.com)'))).prefault([]),
    /** The claim listing the person's groups (Entra: `groups`, Keycloak: a mapper's name). */
    groupsClaim: z.string().min(1).default('groups'),
    /** Groups whose members may sign in (any one of them); empty: any. */
    allowedGroups: list.prefault([]),
    /** Claim values that give gateway roles, e.g. `{ claim: groups, value: crm-admins, roles: [admin] }`. */
    roleMapping: z
      .array(
        z.strictObject({
          claim: z.string().min(1).default('groups'),
          value: z.union([z.string(), z.boolean(), z.number()]).transform(String),
          roles: z.array(role).min(1),
        }),
      )
      .default([]),
    /** Roles everyone who signs in through the provider gets. */
    defaultRoles: list.pipe(z.array(role)).prefault([]),
    /** The login page's button, e.g. "Google Workspace"; default a neutral "organisation account" text. */
    buttonLabel: z.string().min(1).max(60).optional(),
  })
  .superRefine((c, ctx) => {
    // Said on a setting that was given, so the message names the variable that set it (a lone
    // OIDC_ISSUER is told what else it needs, not that some other key is missing).
    const missing = [!c.issuer && 'issuer (OIDC_ISSUER)', !c.clientId && 'clientId (OIDC_CLIENT_ID)', !c.clientSecret && 'the client secret (OIDC_CLIENT_SECRET; the gateway is a confidential client)'].filter((m) => m !== false);
    if (missing.length > 0) {
      ctx.addIssue({ code: 'custom', path: givenSetting(c), message: `sign-in with an identity provider needs ${missing.join(', ')}` });
    }
    if (!c.scopes.includes('openid')) ctx.addIssue({ code: 'custom', path: ['scopes'], message: 'scopes must include openid' });
    if (c.redirectUri && new URL(c.redirectUri).pathname !== '/auth/oidc/callback') {
      ctx.addIssue({ code: 'custom', path: ['redirectUri'], message: 'the path must be /auth/oidc/callback' });
    }
  })
  // Checked above: these three are there.
  .transform((c) => c as typeof c & { issuer: string; clientId: string; clientSecret: string });

export type OidcConfig = z.output<typeof oidcSchema>;
