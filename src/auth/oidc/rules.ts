import { createHash } from 'node:crypto';
import { GatewayError } from '../../errors.js';
import type { OidcConfig } from './config.js';

/** Every subject signed in through an identity provider starts with this; local names never may. */
export const OIDC_SUBJECT_PREFIX = 'oidc:';

/** OIDC Core §2: `sub` is at most 255 ASCII characters; printable ones only, as it reaches headers and logs. */
const SUB = /^[\x21-\x7e]{1,255}$/;

/** The whole shape of such a subject (oidcSubject), for commands that take one (block user, sessions --user). */
export const OIDC_SUBJECT_PATTERN = /^oidc:[0-9a-f]{8}:[\x21-\x7e]{1,255}$/;

/** Whether a subject is one an identity provider vouched for (no local account record). */
export function isOidcSubject(subject: string): boolean {
  return subject.startsWith(OIDC_SUBJECT_PREFIX);
}

/**
 * The gateway subject of a person at a provider: `oidc:<issuer tag>:<sub>`. Issuer and `sub`
 * together are the only stable, unique identifier OIDC gives (Core §5.7): an email can be
 * reassigned, renamed, or claimed at another provider (or another tenant of the same one), and
 * `sub` alone is unique only within its issuer. The tag is 8 hex characters of SHA-256 over
 * the issuer, so an operator who switches providers (or Entra tenants, Keycloak realms) never
 * finds a new person inheriting an old one's sessions, blocks or audit trail, while logs stay
 * readable. The prefix keeps them apart from local accounts (break-glass).
 */
export function oidcSubject(issuer: string, sub: string): string {
  if (!SUB.test(sub)) throw new GatewayError('OIDC_TOKEN_INVALID', `sub ${JSON.stringify(sub.slice(0, 80))} is not 1-255 printable ASCII characters`);
  const tag = createHash('sha256').update(issuer).digest('hex').slice(0, 8);
  return `${OIDC_SUBJECT_PREFIX}${tag}:${sub}`;
}

/** What the gateway takes from a verified id_token. */
export interface OidcIdentity {
  subject: string;
  email: string;
  roles: string[];
  groups: string[];
}

/** A claim's values as strings: a string, a number, a boolean, or an array of them. */
function claimValues(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' ? [String(x)] : []));
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return [String(v)];
  return [];
}

/**
 * The sign-in rules over verified id_token claims, in the order a person would want them
 * explained: a verified email (`emailVerifiedClaim` exactly `true`: a provider that lets people
 * type any address must not let them pass as someone else's domain), then the email domain,
 * then the groups; finally the roles from `defaultRoles` and `roleMapping`. Each refusal is a
 * GatewayError whose detail names what failed (for the security log, never the page).
 */
export function applyRules(cfg: OidcConfig, issuer: string, claims: Record<string, unknown>): OidcIdentity {
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  const subject = oidcSubject(issuer, sub);
  const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : '';
  if (!email) throw new GatewayError('OIDC_EMAIL_UNVERIFIED', `${subject}: no email claim (is the email scope requested?)`);
  const verified = claims[cfg.emailVerifiedClaim];
  if (verified !== true) throw new GatewayError('OIDC_EMAIL_UNVERIFIED', `${subject}: email ${email} ${cfg.emailVerifiedClaim}=${JSON.stringify(verified)}`);
  const at = email.lastIndexOf('@');
  const domain = at > 0 ? email.slice(at + 1) : '';
  if (cfg.allowedEmailDomains.length > 0 && !cfg.allowedEmailDomains.includes(domain)) {
    throw new GatewayError('OIDC_NOT_ALLOWED', `${subject}: email domain ${JSON.stringify(domain)} not in allowedEmailDomains`);
  }
  const groups = claimValues(claims[cfg.groupsClaim]);
  if (cfg.allowedGroups.length > 0 && !groups.some((g) => cfg.allowedGroups.includes(g))) {
    throw new GatewayError('OIDC_NOT_ALLOWED', `${subject}: in none of allowedGroups (${cfg.groupsClaim}: ${JSON.stringify(groups.slice(0, 20))})`);
  }
  const roles = new Set(cfg.defaultRoles);
  for (const rule of cfg.roleMapping) {
    if (claimValues(claims[rule.claim]).includes(rule.value)) for (const r of rule.roles) roles.add(r);
  }
  return { subject, email, roles: [...roles], groups };
}
