import { createHash } from 'node:crypto';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { GatewayConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import type { Kv } from '../../stores/kv.js';
import type { PasskeyRecord } from '../store/factors.js';

/** A ceremony's challenge lives this long, and is taken (deleted) by its first verification. */
const CHALLENGE_TTL_MS = 2 * 60_000;
const CEREMONY_TIMEOUT_MS = 60_000;

/** @simplewebauthn/server is loaded at the first ceremony: a gateway whose users never use passkeys never loads it. */
const server = (): Promise<typeof import('@simplewebauthn/server')> => import('@simplewebauthn/server');

/**
 * The relying party: its ID is the parent domain of the sign-in host unless configured
 * (`example.com` for `crm.example.com`), so one passkey works on every session host under it; the
 * origins it accepts are exactly those hosts' https origins (with the public port). An assertion
 * made on any other origin (a look-alike, another port, a sibling site under the same rpID that
 * is not a session host) is refused. Under a one-label parent such as `localhost` the sign-in
 * host itself: browsers refuse a top-level name as an rpID (Chromium: "The RP ID "localhost" is
 * invalid for this domain" on `nocodb.localhost`), so there passkeys are used on the sign-in host.
 */
export interface RelyingParty {
  readonly id: string;
  readonly name: string;
  readonly origins: readonly string[];
}

export function relyingParty(cfg: GatewayConfig, signInHost: string, origins: readonly string[]): RelyingParty {
  return { id: cfg.auth.passkeys.rpId ?? parentDomain(signInHost), name: cfg.auth.passkeys.rpName, origins };
}

/** `crm.example.com` → `example.com`; `nocodb.localhost` and `example.com` stay (their parent is a top-level name). */
export function parentDomain(host: string): string {
  const labels = host.split('.');
  return labels.length > 2 ? labels.slice(1).join('.') : host;
}

/** The WebAuthn user handle: a hash of the name, so the authenticator never holds the name as the ID and it is stable without storing one. */
export function userHandle(user: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(createHash('sha256').update(`crm-gateway/webauthn-user:${user}`, 'utf8').digest());
}

/** Challenges by ceremony: `key` binds one to a pending sign-in or a session, so none is usable from another browser. */
export class Ceremonies {
  constructor(
    private readonly kv: Kv,
    private readonly rp: RelyingParty,
  ) {}

  async registrationOptions(key: string, user: string, existing: readonly PasskeyRecord[], residentKey: 'required' | 'preferred'): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const { generateRegistrationOptions } = await server();
    const options = await generateRegistrationOptions({
      rpName: this.rp.name,
      rpID: this.rp.id,
      userName: user,
      userID: userHandle(user),
      timeout: CEREMONY_TIMEOUT_MS,
      attestationType: 'none',
      excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports as never })),
      authenticatorSelection: { residentKey, userVerification: 'required' },
    });
    await this.kv.set(`mfa:challenge:reg:${key}`, options.challenge, CHALLENGE_TTL_MS);
    return options;
  }

  /** Verifies a registration; the new passkey for `user`, or PASSKEY_INVALID / MFA_EXPIRED. */
  async register(key: string, user: string, response: RegistrationResponseJSON): Promise<PasskeyRecord> {
    const challenge = await this.kv.getdel(`mfa:challenge:reg:${key}`);
    if (!challenge) throw new GatewayError('MFA_EXPIRED', 'no live registration challenge');
    const { verifyRegistrationResponse } = await server();
    let result: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      result = await verifyRegistrationResponse({ response, expectedChallenge: challenge, expectedOrigin: [...this.rp.origins], expectedRPID: this.rp.id, requireUserVerification: true });
    } catch (err) {
      throw new GatewayError('PASSKEY_INVALID', `registration: ${(err as Error).message}`);
    }
    if (!result.verified) throw new GatewayError('PASSKEY_INVALID', 'registration not verified');
    const c = result.registrationInfo.credential;
    return { id: c.id, user, publicKey: Buffer.from(c.publicKey).toString('base64url'), counter: c.counter, transports: c.transports ?? [], createdAt: new Date() };
  }

  /** Options for an assertion: `allow` lists the user's passkeys for a second factor; empty for a passkey sign-in (discoverable). */
  async authenticationOptions(key: string, allow: readonly PasskeyRecord[]): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const { generateAuthenticationOptions } = await server();
    const options = await generateAuthenticationOptions({
      rpID: this.rp.id,
      timeout: CEREMONY_TIMEOUT_MS,
      userVerification: 'required',
      allowCredentials: allow.map((p) => ({ id: p.id, transports: p.transports as never })),
    });
    await this.kv.set(`mfa:challenge:auth:${key}`, options.challenge, CHALLENGE_TTL_MS);
    return options;
  }

  /**
   * Verifies an assertion against the stored passkey: challenge (single use), origin, rpID, user
   * verification, signature, and a counter that must move forward when the authenticator keeps
   * one. Returns the counter to store.
   */
  async authenticate(key: string, passkey: PasskeyRecord, response: AuthenticationResponseJSON): Promise<number> {
    const challenge = await this.kv.getdel(`mfa:challenge:auth:${key}`);
    if (!challenge) throw new GatewayError('MFA_EXPIRED', 'no live authentication challenge');
    const { verifyAuthenticationResponse } = await server();
    let result: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
    try {
      result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: [...this.rp.origins],
        expectedRPID: this.rp.id,
        credential: { id: passkey.id, publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')), counter: passkey.counter, transports: passkey.transports as never },
        requireUserVerification: true,
      });
    } catch (err) {
      throw new GatewayError('PASSKEY_INVALID', `assertion: ${(err as Error).message}`);
    }
    if (!result.verified) throw new GatewayError('PASSKEY_INVALID', 'assertion not verified');
    return result.authenticationInfo.newCounter;
  }
}

/** A credential JSON from a form field, shape-checked just enough to hand to the verifier. */
export function parseCredential<T extends { id: string; rawId: string; type: string; response: object }>(text: string | null): T {
  let v: unknown;
  try {
    v = JSON.parse(text ?? '');
  } catch {
    throw new GatewayError('PASSKEY_INVALID', 'credential is not JSON');
  }
  const c = v as Partial<T> | null;
  if (!c || typeof c !== 'object' || typeof c.id !== 'string' || typeof c.rawId !== 'string' || c.type !== 'public-key' || typeof c.response !== 'object' || c.response === null) {
    throw new GatewayError('PASSKEY_INVALID', 'credential has not the shape of a PublicKeyCredential');
  }
  return c as T;
}
