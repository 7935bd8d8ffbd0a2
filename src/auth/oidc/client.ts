import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import * as oidc from 'openid-client';
import { GatewayError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { OidcConfig } from './config.js';

/**
 * How long any one request to the provider may take (discovery, keys, code exchange), seconds.
 * A person is waiting on the callback page: past this the answer is OIDC_UNAVAILABLE, not a hang.
 */
const REQUEST_TIMEOUT_S = 5;
/** After a failed discovery, sign-ins are refused without asking the provider again for this long. */
const DISCOVERY_RETRY_MS = 5_000;

/** What a sign-in must remember between its start and its callback (kept server-side, single use). */
export interface FlowSecrets {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The verified id_token claims of a callback, and the issuer they were verified against. */
export interface VerifiedCallback {
  issuer: string;
  claims: Record<string, unknown>;
}

/**
 * The relying party: openid-client 6 (certified RP) against one provider. Discovery never
 * holds up startup (the endpoints start it in the background), so a provider down when the
 * gateway starts stops nothing; a failed discovery is retried by the next sign-in at most every
 * DISCOVERY_RETRY_MS (meanwhile OIDC_UNAVAILABLE at once, rather than every visitor waiting out
 * a timeout). Loaded with `await import()` only when `auth.oidc` is configured (startup footprint).
 */
export class OidcClient {
  private config: oidc.Configuration | undefined;
  private discovering: Promise<oidc.Configuration> | undefined;
  private failed: { at: number; why: string } | undefined;
  private fetchWithCa: oidc.CustomFetch | undefined;

  constructor(
    private readonly cfg: OidcConfig,
    private readonly redirectUri: string,
    private readonly clockToleranceS: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The provider's configuration, discovered once; OIDC_UNAVAILABLE while it cannot be. */
  async configuration(): Promise<oidc.Configuration> {
    if (this.config) return this.config;
    if (this.failed && this.now() - this.failed.at < DISCOVERY_RETRY_MS) {
      throw new GatewayError('OIDC_UNAVAILABLE', `discovery of ${this.cfg.issuer} failed ${this.now() - this.failed.at} ms ago: ${this.failed.why}`, { 'retry-after': String(Math.ceil(DISCOVERY_RETRY_MS / 1000)) });
    }
    this.discovering ??= this.discover().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  private async discover(): Promise<oidc.Configuration> {
    try {
      // Read here, not at startup: an unreadable caFile is told like a provider that is down.
      if (this.cfg.caFile && !this.fetchWithCa) this.fetchWithCa = fetchTrusting(readFileSync(this.cfg.caFile, 'utf8'));
      const server = new URL(this.cfg.issuer);
      const probe = await oidc.discovery(server, this.cfg.clientId, undefined, undefined, this.options());
      // client_secret_basic is the spec's default when the provider lists no methods; _post when it offers only that.
      const methods = probe.serverMetadata().token_endpoint_auth_methods_supported;
      const auth = !methods || methods.includes('client_secret_basic') ? oidc.ClientSecretBasic(this.cfg.clientSecret) : oidc.ClientSecretPost(this.cfg.clientSecret);
      const config = new oidc.Configuration(probe.serverMetadata(), this.cfg.clientId, { client_secret: this.cfg.clientSecret, redirect_uris: [this.redirectUri], [oidc.clockTolerance]: this.clockToleranceS }, auth);
      config.timeout = REQUEST_TIMEOUT_S;
      if (this.fetchWithCa) config[oidc.customFetch] = this.fetchWithCa;
      // The id_token's signature is checked against the provider's keys (jwks_uri), not left to
      // TLS alone as OIDC Core 3.1.3.7 would allow: a CA in caFile, a proxy or a misissued
      // certificate must not be enough to forge a person.
      oidc.enableNonRepudiationChecks(config);
      this.config = config;
      this.failed = undefined;
      this.log.app('info', 'OIDC provider discovered', { issuer: this.cfg.issuer, issParameter: config.serverMetadata().authorization_response_iss_parameter_supported === true });
      return config;
    } catch (err) {
      const why = describe(err);
      this.failed = { at: this.now(), why };
      this.log.app('warn', 'OIDC provider discovery failed: sign-ins with it answer 503 OIDC_UNAVAILABLE until it succeeds (retried at the next sign-in)', { issuer: this.cfg.issuer, error: why });
      throw new GatewayError('OIDC_UNAVAILABLE', `discovery of ${this.cfg.issuer}: ${why}`, { 'retry-after': String(Math.ceil(DISCOVERY_RETRY_MS / 1000)) });
    }
  }

  private options(): oidc.DiscoveryRequestOptions {
    return { timeout: REQUEST_TIMEOUT_S, ...(this.fetchWithCa ? { [oidc.customFetch]: this.fetchWithCa } : {}) };
  }

  /** The provider's authorization URL for one sign-in: code flow, PKCE S256, state and nonce. */
  async authorizationUrl(secrets: FlowSecrets): Promise<URL> {
    const config = await this.configuration();
    return oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      response_type: 'code',
      scope: this.cfg.scopes.join(' '),
      state: secrets.state,
      nonce: secrets.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(secrets.codeVerifier),
      code_challenge_method: 'S256',
    });
  }

  /**
   * The callback: RFC 9207 issuer identification first (when the provider advertises it, `iss`
   * must be there and be the issuer; when present it must match anyway), then openid-client's
   * checks (state, error response, the code exchange with the PKCE verifier, the id_token's
   * signature against the provider's keys, `iss`, `aud`/`azp`, `exp`/`iat`, `nonce`). Every
   * failure becomes one OIDC_* GatewayError; the detail says what failed.
   */
  async callback(currentUrl: URL, secrets: FlowSecrets): Promise<VerifiedCallback> {
    const config = await this.configuration();
    const meta = config.serverMetadata();
    const iss = currentUrl.searchParams.getAll('iss');
    if (iss.length > 1) throw new GatewayError('OIDC_ISSUER_MISMATCH', `iss given ${iss.length} times`);
    if (iss.length === 0 && meta.authorization_response_iss_parameter_supported === true) {
      throw new GatewayError('OIDC_ISSUER_MISMATCH', 'iss missing from the authorization response, and the provider advertises authorization_response_iss_parameter_supported');
    }
    if (iss[0] !== undefined && iss[0] !== meta.issuer) throw new GatewayError('OIDC_ISSUER_MISMATCH', `iss ${JSON.stringify(iss[0].slice(0, 200))} is not ${meta.issuer}`);
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: secrets.codeVerifier, expectedState: secrets.state, expectedNonce: secrets.nonce, idTokenExpected: true });
    } catch (err) {
      throw toGatewayError(err);
    }
    const claims = tokens.claims();
    if (!claims) throw new GatewayError('OIDC_TOKEN_INVALID', 'no id_token in the token response');
    return { issuer: meta.issuer, claims: { ...claims } };
  }
}

/** fetch trusting a private provider's CA besides the system's roots (undici, Node's own fetch). */
function fetchTrusting(ca: string): oidc.CustomFetch {
  let dispatcher: unknown;
  return async (url, options) => {
    const undici = await import('undici');
    dispatcher ??= new undici.Agent({ connect: { ca: [...rootCertificates, ca] } });
    return (await undici.fetch(url, { ...(options as object), dispatcher } as never)) as unknown as Response;
  };
}

/** A short description of a failure, for the security log. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  const code = (err as { code?: unknown }).code;
  return `${typeof code === 'string' ? `${code} ` : ''}${err.message}${cause}`.slice(0, 500);
}

/** The cause's own cause's fields (oauth4webapi hangs `claim` there on timestamp failures). */
function causeField(err: Error, field: string): unknown {
  const c = err.cause as { cause?: Record<string, unknown> } & Record<string, unknown> | undefined;
  return c?.[field] ?? c?.cause?.[field];
}

/**
 * openid-client's failures → the gateway's codes. Network failures and timeouts: the provider is
 * unavailable. The provider's own error answers: it refused. A token that fails a check: invalid
 * (expired apart). An answer that is not what the protocol says (not JSON, not a JWT): garbage.
 */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const why = describe(err);
  if (err instanceof oidc.AuthorizationResponseError) return new GatewayError('OIDC_PROVIDER_REFUSED', `authorization response error ${err.error}: ${err.error_description ?? ''}`.slice(0, 500));
  if (err instanceof oidc.ResponseBodyError || err instanceof oidc.WWWAuthenticateChallengeError) return new GatewayError('OIDC_TOKEN_INVALID', `token endpoint refused the code: ${why}`);
  if (err instanceof oidc.ClientError) {
    switch (err.code) {
      case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
        return new GatewayError(causeField(err, 'claim') === 'exp' ? 'OIDC_TOKEN_EXPIRED' : 'OIDC_TOKEN_INVALID', why);
      case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
      case 'OAUTH_KEY_SELECTION_FAILED':
        return new GatewayError('OIDC_TOKEN_INVALID', why);
      case 'OAUTH_INVALID_RESPONSE':
        // The signature check is reported as an invalid response; it is a token that fails a check.
        return new GatewayError(/signature verification failed/i.test(why) ? 'OIDC_TOKEN_INVALID' : 'OIDC_PROVIDER_ERROR', why);
      case 'OAUTH_RESPONSE_IS_NOT_JSON':
      case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
      case 'OAUTH_PARSE_ERROR':
        return new GatewayError('OIDC_PROVIDER_ERROR', why);
      default:
        return new GatewayError('OIDC_PROVIDER_ERROR', why);
    }
  }
  // fetch's TypeError ("fetch failed": refused, reset, TLS), the request timeout's AbortError.
  return new GatewayError('OIDC_UNAVAILABLE', why);
}
